#!/usr/bin/env bash
# Start one node of the compose cluster: KRaft broker and controller in one process.
#   clients and brokers:  SASL_SSL on 9092, SCRAM-SHA-512 (users made by kafka-setup.sh)
#   controller quorum:    SSL on 9093 with client certificates (mTLS; KRaft controllers
#                         cannot use SCRAM, whose credentials live in the metadata they serve)
# Passwords and keys are read from /run/secrets at start; the properties file holding them
# is written to the container's tmpfs, never to the image or a volume.
set -euo pipefail

n="${NODE_ID:?NODE_ID is required}"
secrets=/run/secrets
work=/tmp/sgb-kafka
mkdir -p "$work"
chmod 700 "$work"
umask 077

keystore_pass="$(cat "$secrets/kafka-keystore.password")"
truststore_pass="$(cat "$secrets/kafka-truststore.password")"
admin_pass="$(cat "$secrets/admin.password")"

cat > "$work/server.properties" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093
listeners=SASL_SSL://:9092,CONTROLLER://:9093
advertised.listeners=SASL_SSL://kafka-$n:9092
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL
inter.broker.listener.name=SASL_SSL
controller.listener.names=CONTROLLER
log.dirs=/var/lib/kafka/data

sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
# Sessions authenticate again every minute, so a rotated password cuts off the old sessions.
connections.max.reauth.ms=60000
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pass";
ssl.keystore.type=PKCS12
ssl.keystore.location=$secrets/kafka-keystore.p12
ssl.keystore.password=$keystore_pass
ssl.truststore.type=PKCS12
ssl.truststore.location=$secrets/kafka-truststore.p12
ssl.truststore.password=$truststore_pass
listener.name.controller.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]+)\$/\$1/,DEFAULT

authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:kafka-1;User:kafka-2;User:kafka-3

auto.create.topics.enable=false
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
unclean.leader.election.enable=false
PROPS

# The admin client configuration, for the health check and kafka-setup.sh.
cat > "$work/admin.properties" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pass";
ssl.truststore.type=PKCS12
ssl.truststore.location=$secrets/kafka-truststore.p12
ssl.truststore.password=$truststore_pass
PROPS

# Format once (a formatted volume is left as it is). The admin's SCRAM credential goes into
# the bootstrap metadata: the brokers need it to talk to each other before anything else.
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted --cluster-id "$(cat "$secrets/kafka-cluster-id")" \
  --config "$work/server.properties" --add-scram "SCRAM-SHA-512=[name=admin,password=$admin_pass]"

export LOG_DIR="${LOG_DIR:-/tmp/kafka-logs}" KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms1g -Xmx1g}"
exec /opt/kafka/bin/kafka-server-start.sh "$work/server.properties"
