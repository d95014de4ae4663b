#!/usr/bin/env bash
# One-shot: make the SCRAM users of the compose deployment and their ACLs, as admin.
# The ACLs are the ones `sgb deploy k8s` gives the same principals (sgb/manifests/generate.py);
# tests/e2e/test_deploy_compose.py checks that the two agree.
set -euo pipefail

secrets=/run/secrets
bootstrap=kafka-1:9092,kafka-2:9092,kafka-3:9092
umask 077
config=/tmp/admin.properties
cat > "$config" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(cat "$secrets/admin.password")";
ssl.truststore.type=PKCS12
ssl.truststore.location=$secrets/kafka-truststore.p12
ssl.truststore.password=$(cat "$secrets/kafka-truststore.password")
PROPS

for user in sgb-filter sgb-connector-police sgb-hub-school-dsl-100000; do
  /opt/kafka/bin/kafka-configs.sh --bootstrap-server "$bootstrap" --command-config "$config" --alter \
    --entity-type users --entity-name "$user" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$(cat "$secrets/$user.password")]"
done

# principal  resource  pattern  name  operations
ACLS="
sgb-filter topic prefixed sg.ingress. Read,Describe
sgb-filter topic literal sg.consent.v1 Read,Write,Describe
sgb-filter topic literal sg.status.v1 Read,Write,Describe
sgb-filter topic literal sg.identity.links.v1 Read,Write,Describe
sgb-filter topic literal sg.shares.v1 Read,Write,Describe
sgb-filter topic prefixed sg.deliver. Write,Describe
sgb-filter topic literal sg.audit.decisions.v1 Write,Describe
sgb-filter topic literal sg.dlq.v1 Write,Describe
sgb-filter topic literal sg.schemas.v1 Read,Write,Describe
sgb-filter group prefixed sgb-filter Read,Describe
sgb-filter group literal sgb-schema-reader Read
sgb-filter transactional-id prefixed sgb-filter Write,Describe
sgb-connector-police topic literal sg.ingress.police.v1 Write,Describe
sgb-connector-police topic literal sg.dlq.v1 Write,Describe
sgb-connector-police topic literal sg.checkpoints.v1 Read,Write,Describe
sgb-connector-police group prefixed sgb-connector-police Read,Describe
sgb-connector-police topic literal sg.schemas.v1 Read,Write,Describe
sgb-connector-police group literal sgb-schema-reader Read
sgb-connector-police transactional-id prefixed sgb-connector-police Write,Describe
sgb-hub-school-dsl-100000 topic literal sg.deliver.school_dsl.100000.v1 Read,Describe
sgb-hub-school-dsl-100000 group literal sgb-hub-school_dsl-100000 Read,Describe
sgb-hub-school-dsl-100000 group literal sgb-hub-school_dsl-100000-inbox Read,Describe
sgb-hub-school-dsl-100000 topic literal sg.schemas.v1 Read,Describe
sgb-hub-school-dsl-100000 group literal sgb-schema-reader Read
"

while read -r principal resource pattern name operations; do
  [[ -z "$principal" ]] && continue
  args=()
  for operation in ${operations//,/ }; do
    args+=(--operation "$operation")
  done
  /opt/kafka/bin/kafka-acls.sh --bootstrap-server "$bootstrap" --command-config "$config" --add \
    --allow-principal "User:$principal" "${args[@]}" --resource-pattern-type "$pattern" "--$resource" "$name"
done <<< "$ACLS"
echo "SCRAM users and ACLs are in place."
