#!/usr/bin/env bash
# Makes a throw-away development PKI with the openssl CLI, for trying congvan out and for
# interoperability checks: a root CA, an intermediate, office identities (RSA-2048 and
# ECDSA P-256) for a domain, an expired one, a revoked one with the intermediate's CRL, and
# one without the emailProtection EKU. Nothing here is for production, and nothing it makes
# is committed: run it when you need it.
#
#   certs/make-dev-pki.sh [DIR] [DOMAIN]        (default: ./congvan-dev-pki dev.gov.vn)
#
# Then, e.g.:  congvan cert import --cert DIR/rsa2048.chain.pem --key DIR/rsa2048.key.pem --domain DOMAIN
#              congvan cert trust add DIR/root.pem && congvan cert crl add DIR/intermediate.crl.pem
set -euo pipefail
DIR=${1:-./congvan-dev-pki}
DOMAIN=${2:-dev.gov.vn}
mkdir -p "$DIR" && cd "$DIR"
umask 077

subj() { echo "/C=VN/O=congvan DEVELOPMENT ONLY/CN=$1"; }

cat > ext.cnf <<EXT
[ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[office]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = emailProtection
subjectAltName = email:vanthu@$DOMAIN
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[no_eku]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = email:vanthu@$DOMAIN
EXT

# Root (P-384) and intermediate (P-256).
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out root.key.pem
openssl req -new -x509 -key root.key.pem -subj "$(subj 'congvan development root CA')" \
  -days 3650 -extensions ca -config ext.cnf -out root.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out intermediate.key.pem
openssl req -new -key intermediate.key.pem -subj "$(subj 'congvan development intermediate CA')" -out intermediate.csr
openssl x509 -req -in intermediate.csr -CA root.pem -CAkey root.key.pem -CAcreateserial \
  -days 1825 -extfile ext.cnf -extensions intermediate -out intermediate.pem 2>/dev/null

# Office identities: name, key algorithm options, extension section, validity.
issue() {
  local name=$1 alg=$2 section=$3 start=$4 end=$5
  # shellcheck disable=SC2086
  openssl genpkey $alg -out "$name.key.pem"
  openssl req -new -key "$name.key.pem" -subj "$(subj "Văn thư $DOMAIN ($name)")" -out "$name.csr" 2>/dev/null
  # A local CA database lets us backdate certificates (expired) with `openssl ca`.
  openssl ca -batch -config ca.cnf -extfile ext.cnf -extensions "$section" -startdate "$start" \
    -enddate "$end" -in "$name.csr" -out "$name.pem" -notext 2>/dev/null
  cat "$name.pem" intermediate.pem > "$name.chain.pem"
}
mkdir -p db && : > db/index.txt && echo 1000 > db/serial && echo 1000 > db/crlnumber
cat > ca.cnf <<CA
[ca]
default_ca = dev
[dev]
database = db/index.txt
serial = db/serial
crlnumber = db/crlnumber
new_certs_dir = db
certificate = intermediate.pem
private_key = intermediate.key.pem
default_md = sha256
default_crl_days = 30
policy = any
unique_subject = no
[any]
commonName = supplied
CA
now=$(date -u +%y%m%d%H%M%SZ)
year=$(date -u -d '+365 days' +%y%m%d%H%M%SZ)
issue rsa2048 "-algorithm RSA -pkeyopt rsa_keygen_bits:2048" office "$now" "$year"
issue p256 "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" office "$now" "$year"
issue expired "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" office \
  "$(date -u -d '-400 days' +%y%m%d%H%M%SZ)" "$(date -u -d '-35 days' +%y%m%d%H%M%SZ)"
issue revoked "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" office "$now" "$year"
issue no-email-eku "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" no_eku "$now" "$year"
openssl ca -config ca.cnf -revoke revoked.pem -crl_reason keyCompromise 2>/dev/null
openssl ca -config ca.cnf -gencrl -out intermediate.crl.pem 2>/dev/null
rm -f ./*.csr
chmod 600 ./*.key.pem
echo "development PKI for $DOMAIN written to $(pwd):"
ls -1 ./*.pem
