#!/usr/bin/env bash
# Make the compose deployment's certificates, passwords and keys at run time. Nothing this
# script makes is committed (deploy/compose/.gitignore keeps secrets/ out of git).
#
#   deploy/compose/make-secrets.sh              # runs keytool in a one-shot apache/kafka container
#   deploy/compose/make-secrets.sh --inside DIR # what that container runs (needs bash and keytool)
#
# It makes, in deploy/compose/secrets/ (or $SGB_SECRETS_DIR):
#   kafka-ca.crt                       the CA every client and broker trusts (its key is deleted)
#   kafka-truststore.p12 (+ .password) the same CA for the brokers
#   kafka-N.p12 (+ .password)          node N's certificate (CN=kafka-N) and key, N = 1..3
#   kafka-cluster-id                   the KRaft cluster id
#   <principal>.password               SCRAM-SHA-512 passwords: admin and each sgb principal
#   <principal>.toml                   sgb settings for that principal (SGB_CONFIG)
#   pseudonymisation.key               the filters' shared 32-byte key
# The folder is 0700; its files are 0644 so that the containers' own users (uid 1000 for
# Kafka, 10001 for sgb) can read the ones mounted into them.
set -euo pipefail

IMAGE="apache/kafka:4.1.1"
PRINCIPALS="admin sgb-filter sgb-connector-police sgb-hub-school-dsl-100000"
BOOTSTRAP="kafka-1:9092,kafka-2:9092,kafka-3:9092"

if [[ "${1:-}" != "--inside" ]]; then
  here="$(cd "$(dirname "$0")" && pwd)"
  out="${SGB_SECRETS_DIR:-$here/secrets}"
  mkdir -p "$out"
  chmod 700 "$out"
  if [[ -e "$out/.complete" ]]; then
    echo "Secrets were already made in $out; delete that folder to make new ones."
    exit 0
  fi
  exec docker run --rm --network none --user "$(id -u):$(id -g)" \
    -v "$out:/secrets" -v "$here/make-secrets.sh:/make-secrets.sh:ro" \
    --entrypoint /bin/bash "$IMAGE" /make-secrets.sh --inside /secrets
fi

dir="${2:?usage: make-secrets.sh --inside DIR}"
cd "$dir"
umask 022
rand() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
days=825

ca_pass="$(rand)"
keytool -genkeypair -alias ca -dname "CN=sgb-compose-ca" -keyalg EC -groupname secp384r1 -validity "$days" \
  -ext bc:c -keystore ca.p12 -storetype PKCS12 -storepass "$ca_pass" -noprompt
keytool -exportcert -rfc -alias ca -keystore ca.p12 -storepass "$ca_pass" -file kafka-ca.crt

rand > kafka-truststore.password
keytool -importcert -noprompt -alias ca -file kafka-ca.crt -keystore kafka-truststore.p12 -storetype PKCS12 \
  -storepass "$(cat kafka-truststore.password)"

for n in 1 2 3; do
  store="kafka-$n.p12"
  rand > "kafka-$n.password"
  pass="$(cat "kafka-$n.password")"
  keytool -genkeypair -alias "kafka-$n" -dname "CN=kafka-$n" -keyalg EC -groupname secp384r1 -validity "$days" \
    -keystore "$store" -storetype PKCS12 -storepass "$pass" -noprompt
  keytool -certreq -alias "kafka-$n" -keystore "$store" -storepass "$pass" -file "kafka-$n.csr"
  keytool -gencert -alias ca -keystore ca.p12 -storepass "$ca_pass" -infile "kafka-$n.csr" -outfile "kafka-$n.crt" \
    -rfc -validity "$days" -ext "SAN=dns:kafka-$n,dns:localhost" -ext "EKU=serverAuth,clientAuth" \
    -ext "KU=digitalSignature,keyEncipherment"
  keytool -importcert -noprompt -alias ca -file kafka-ca.crt -keystore "$store" -storepass "$pass"
  keytool -importcert -noprompt -alias "kafka-$n" -file "kafka-$n.crt" -keystore "$store" -storepass "$pass"
  rm -f "kafka-$n.csr" "kafka-$n.crt"
done
# Nothing more is signed: the CA's key does not outlive this script.
rm -f ca.p12

# A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (as kafka-storage random-uuid).
head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' > kafka-cluster-id

for principal in $PRINCIPALS; do
  rand > "$principal.password"
  cat > "$principal.toml" <<TOML
# sgb settings for $principal (made by make-secrets.sh; mounted as a compose secret)
bootstrap_servers = "$BOOTSTRAP"
security_protocol = "SASL_SSL"
sasl_mechanism = "SCRAM-SHA-512"
sasl_username = "$principal"
sasl_password = "$(cat "$principal.password")"
ssl_ca_location = "/run/secrets/kafka-ca.crt"
TOML
done

head -c 32 /dev/urandom > pseudonymisation.key
touch .complete
echo "Secrets made in ${SGB_SECRETS_DIR:-deploy/compose/secrets}."
