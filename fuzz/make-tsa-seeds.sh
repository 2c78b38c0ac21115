#!/bin/sh
# Writes the seeds of the `tsa` target (corpus/tsa/): answers of `openssl ts -reply` to the
# target's fixed request (imprint 32 x 0x11, nonce 0x0123456789abcdef) and to others, from a
# throwaway TSA certificate (critical timeStamping EKU) issued by the CA given. Called by
# make-seeds.sh with its throwaway CA; runs alone with any CA:
#
#   ./make-tsa-seeds.sh CA.pem CA.key
set -eu
cd "$(dirname "$0")"
CA=$1; CAKEY=$2
C=corpus/tsa
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p $C

cat > "$T/ext.cnf" <<CNF
[tsa]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
openssl ecparam -name prime256v1 -genkey -noout -out "$T/tsa.key" 2>/dev/null
openssl req -new -key "$T/tsa.key" -subj "/C=VN/O=congvan fuzz seeds/CN=seed TSA" -out "$T/tsa.csr"
openssl x509 -req -in "$T/tsa.csr" -CA "$CA" -CAkey "$CAKEY" -set_serial 0x7a5a -days 36500 \
  -extfile "$T/ext.cnf" -extensions tsa -out "$T/tsa.pem" 2>/dev/null

config() { # name precision-digits
  echo 01 > "$T/serial-$1"
  cat > "$T/$1.cnf" <<CNF
[tsa]
default_tsa = t
[t]
serial = $T/serial-$1
crypto_device = builtin
signer_cert = $T/tsa.pem
certs = $CA
signer_key = $T/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.2
digests = sha256, sha384
accuracy = secs:1, millisecs:500, microsecs:100
clock_precision_digits = $2
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
CNF
}
query() { # out nonce certReq
  cat > "$T/q.cnf" <<CNF
asn1 = SEQUENCE:req
[req]
version = INTEGER:1
imprint = SEQUENCE:imprint
nonce = INTEGER:$2
certReq = BOOLEAN:$3
[imprint]
alg = SEQUENCE:sha256
digest = FORMAT:HEX,OCTETSTRING:1111111111111111111111111111111111111111111111111111111111111111
[sha256]
oid = OID:sha256
CNF
  openssl asn1parse -genconf "$T/q.cnf" -out "$1" -noout
}
config plain 0
config fraction 3
query "$T/ours.tsq" 0x0123456789ABCDEF true
query "$T/nocert.tsq" 0x0123456789ABCDEF false
query "$T/other.tsq" 0x0123456789ABCDEE true
openssl ts -query -digest 0123456789abcdef0123456789abcdef01234567 -sha1 -cert -out "$T/sha1.tsq"
reply() { openssl ts -reply -config "$T/$1.cnf" -queryfile "$2" -out "$C/$3" 2>/dev/null; }
reply plain "$T/ours.tsq" granted.tsr
reply fraction "$T/ours.tsq" granted-fractional-time.tsr
reply plain "$T/nocert.tsq" granted-without-certificates.tsr
reply plain "$T/other.tsq" another-nonce.tsr
reply plain "$T/sha1.tsq" refused-bad-alg.tsr
echo "tsa seeds written under $C/"
