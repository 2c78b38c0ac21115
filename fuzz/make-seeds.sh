#!/bin/sh
# Regenerates the seed corpus of every fuzz target under corpus/<target>/ and seed-ca.pem,
# the public certificate of the throwaway CA that signed the S/MIME seeds (its key and the
# signers' keys are made in a temporary directory and deleted). Needs the openssl CLI.
#
#   ./make-seeds.sh            (from fuzz/; overwrites the seed files it writes, keeps others)
#
# The seeds are structure-aware starting points: SMTP transcripts, messages in the test
# suite's style (8-bit text, attachments, nested messages, edXML parts), messages signed by
# OpenSSL in the forms other offices send (multipart/signed with LF outer headers, opaque
# signed-data, BER with indefinite lengths, RSA-PSS, ECDSA), raw CMS in DER and BER, the
# shipped policy and calendar files.
set -eu
cd "$(dirname "$0")"
C=corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p $C/smtp_reader $C/mime_walk $C/verify $C/seal $C/cms $C/policy $C/calendar $C/edxml $C/headers

crlf() { sed 's/$/\r/' "$1"; }   # LF file -> CRLF on stdout
ADDR=vanthu@hadong.hanoi.gov.vn

# --- the throwaway PKI: a P-256 root, RSA and P-256 signers, valid 2025..2125 ---------------
cat > "$T/leaf.cnf" <<CNF
[leaf]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = emailProtection
subjectAltName = email:$ADDR
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
CNF
openssl ecparam -name prime256v1 -genkey -noout -out "$T/ca.key" 2>/dev/null
openssl req -new -x509 -key "$T/ca.key" -subj "/C=VN/O=congvan fuzz seeds/CN=seed CA" \
  -days 36500 -extensions ca -config "$T/leaf.cnf" -out seed-ca.pem 2>/dev/null
leaf() { # name keyspec...
  n=$1; shift
  openssl genpkey "$@" -out "$T/$n.key" 2>/dev/null
  openssl req -new -key "$T/$n.key" -subj "/C=VN/O=UBND Ha Dong/CN=Van thu $n" -out "$T/$n.csr"
  openssl x509 -req -in "$T/$n.csr" -CA seed-ca.pem -CAkey "$T/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
    -days 36500 -extfile "$T/leaf.cnf" -extensions leaf -out "$T/$n.pem" 2>/dev/null
}
leaf rsa -algorithm RSA -pkeyopt rsa_keygen_bits:2048
leaf p256 -algorithm EC -pkeyopt ec_paramgen_curve:P-256
leaf p384 -algorithm EC -pkeyopt ec_paramgen_curve:P-384

# --- messages in the test suite's style (written with LF, stored with CRLF) -----------------
EDXML='<?xml version="1.0" encoding="UTF-8"?>
<edXML:edXMLEnvelope xmlns:edXML="http://www.e-doc.vn/Schema/"><edXML:edXMLHeader><edXML:MessageHeader><edXML:From><edXML:OrganId>000.00.01.H26</edXML:OrganId></edXML:From><edXML:Code><edXML:CodeNumber>26</edXML:CodeNumber><edXML:CodeNotation>CT-UBND</edXML:CodeNotation></edXML:Code><edXML:PromulgationInfo><edXML:PromulgationDate>2026-02-13</edXML:PromulgationDate></edXML:PromulgationInfo><edXML:OtherInfo><edXML:Priority>2</edXML:Priority><edXML:SteeringType>0</edXML:SteeringType></edXML:OtherInfo></edXML:MessageHeader></edXML:edXMLHeader><edXML:edXMLBody><edXML:Subject><![CDATA[Chỉ thị về tăng cường]]></edXML:Subject></edXML:edXMLBody></edXML:edXMLEnvelope>'
printf '%s\n' "$EDXML" > $C/edxml/envelope.xml
printf '<?xml version="1.0"?>\n<root><MessageHeader><Code><CodeNumber>5</CodeNumber><CodeNotation>QD-UBND</CodeNotation></Code><OtherInfo><Priority>0</Priority></OtherInfo></MessageHeader></root>\n' > $C/edxml/named-any-root.edxml
printf '<?xml version="1.0"?>\n<edXMLEnvelope><edXMLHeader><MessageHeader><PromulgationInfo><PromulgationDate>13/02/2026</PromulgationDate></PromulgationInfo><OtherInfo><Priority>4</Priority></OtherInfo></MessageHeader></edXMLHeader></edXMLEnvelope>\n' > $C/edxml/no-namespace.xml

cat > "$T/plain.eml" <<MSG
From: Van thu <$ADDR>
To: vanphong@hanoi.gov.vn
Subject: Cong van 26/CT-UBND
Date: Mon, 03 Mar 2025 09:00:00 +0700
Message-ID: <26@hadong.hanoi.gov.vn>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Noi dung cong van.
..dot-stuffed in SMTP, not here
MSG
cat > "$T/vietnamese.eml" <<MSG
From: =?UTF-8?B?VsSDbiB0aMawIFVCTkQ=?= <$ADDR>
To: vanphong@hanoi.gov.vn
Subject: =?UTF-8?B?W0jhu45BIFThu5BDXSBDaOG7iSB0aOG7iw==?= so 12
X-Congvan-Urgency: hoa-toc
X-Congvan-Number: 12/CT-UBND
X-Congvan-Signed-Date: 2026-02-13
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Nội dung công văn: tăng cường phòng chống dịch.
MSG
cat > "$T/mixed.eml" <<MSG
From: $ADDR
To: vanphong@hanoi.gov.vn
Subject: [KHẨN] Quyết định 5/QĐ-UBND
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

preamble
--b1
Content-Type: text/plain; charset=utf-8

Kính gửi: Văn phòng.
--b1
Content-Type: application/xml
Content-Disposition: attachment; filename="qd5.edxml"

$EDXML
--b1
Content-Type: application/pdf; name="qd5.pdf"
Content-Disposition: attachment; filename="qd5.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjcKJcTl8uXrp/Og0MTGCjEgMCBvYmoKPDwgL1R5cGUgL0NhdGFsb2cgPj4KZW5kb2JqCg==
--b1--
epilogue
MSG
cat > "$T/nested.eml" <<MSG
From: $ADDR
To: vanphong@hanoi.gov.vn
Subject: Fwd: van ban
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: text/plain

Chuyen tiep.
--outer
Content-Type: message/rfc822

From: other@bocongan.gov.vn
Subject: inner
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary=alt

--alt
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

caf=E9 =
soft break
--alt
Content-Type: text/html; charset=utf-8

<p>Văn bản</p>
--alt--
--outer--
MSG
# 8-bit binary attachment and a line over 998 octets: the canonicaliser must re-encode them.
{
  printf 'From: %s\nTo: vanphong@hanoi.gov.vn\nSubject: dai\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain; charset=utf-8\n\n' "$ADDR"
  head -c 1200 /dev/zero | tr '\0' 'a'; printf '\n--x\nContent-Type: application/octet-stream\n\n'
  printf '\000\001\377\376bin\r\rary\n--x--\n'
} > "$T/dirty.eml"

for m in plain vietnamese mixed nested dirty; do
  crlf "$T/$m.eml" > $C/seal/$m.eml
  crlf "$T/$m.eml" > $C/headers/$m.eml
  crlf "$T/$m.eml" > $C/mime_walk/$m.eml
done
cp "$T/plain.eml" $C/seal/plain-lf.eml
# A clerk's own S/MIME signature over 8-bit text, inside the document to be sealed.
openssl smime -sign -signer "$T/p256.pem" -inkey "$T/p256.key" -from "$ADDR" -to vanphong@hanoi.gov.vn \
  -subject "Tu ky" -in "$T/vietnamese.eml" -out "$T/clerk-signed.eml"
cp "$T/clerk-signed.eml" $C/seal/clerk-signed-8bit.eml

# --- signed messages and CMS, as other offices send them -----------------------------------
sign() { # out signer smime|cms extra-args...
  out=$1; who=$2; tool=$3; shift 3
  openssl $tool -sign -signer "$T/$who.pem" -inkey "$T/$who.key" -from "$ADDR" \
    -to vanphong@hanoi.gov.vn -subject "Cong van ky so" "$@"
}
sign "$T/s1" rsa smime -in "$T/plain.eml" -out $C/verify/smime-rsa-detached.eml
sign "$T/s2" p256 smime -in "$T/mixed.eml" -nodetach -out $C/verify/smime-p256-opaque.eml
sign "$T/s3" rsa cms -in "$T/vietnamese.eml" -keyopt rsa_padding_mode:pss -md sha256 -out $C/verify/cms-rsa-pss.eml
sign "$T/s4" p384 cms -in "$T/nested.eml" -md sha512 -out $C/verify/cms-p384-sha512.eml
sign "$T/s5" p256 smime -in "$T/plain.eml" -crlfeol -certfile seed-ca.pem -out $C/verify/smime-p256-crlf-chain.eml
cp "$T/clerk-signed.eml" $C/verify/smime-p256-8bit.eml
# Signed, then altered (one body byte), and signed but nested in unsigned content.
sed 's/Noi dung/Noi dunG/' $C/verify/smime-rsa-detached.eml > $C/verify/tampered.eml
{
  printf 'From: %s\nTo: vanphong@hanoi.gov.vn\nSubject: partly\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=pp\n\n--pp\nContent-Type: text/plain\n\nUnsigned text shown first.\n--pp\n' "$ADDR"
  sed -n '/^MIME-Version/,$p' $C/verify/smime-rsa-detached.eml
  printf '\n--pp--\n'
} > $C/verify/partly-signed.eml
{
  printf 'From: %s\nTo: vanphong@hanoi.gov.vn\nSubject: forwarded\nMIME-Version: 1.0\nContent-Type: message/rfc822\n\n' "$ADDR"
  cat $C/verify/smime-rsa-detached.eml
} > $C/verify/attached-signed.eml
for f in smime-rsa-detached smime-p256-opaque partly-signed; do cp $C/verify/$f.eml $C/mime_walk/signed-$f.eml; done

# Raw CMS: DER detached and encapsulated, BER streamed (indefinite lengths, chunked eContent).
openssl cms -sign -signer "$T/p256.pem" -inkey "$T/p256.key" -in "$T/plain.eml" -binary -nodetach -outform DER -out $C/cms/p256-encapsulated.der
openssl cms -sign -signer "$T/rsa.pem" -inkey "$T/rsa.key" -in "$T/plain.eml" -binary -outform DER -out $C/cms/rsa-detached.der
openssl cms -sign -signer "$T/rsa.pem" -inkey "$T/rsa.key" -in "$T/mixed.eml" -binary -nodetach -stream -outform DER -out $C/cms/rsa-ber-stream.ber
openssl cms -sign -signer "$T/p384.pem" -inkey "$T/p384.key" -in "$T/plain.eml" -binary -nodetach -md sha384 -keyid -outform DER -out $C/cms/p384-keyid.der
openssl cms -sign -signer "$T/rsa.pem" -inkey "$T/rsa.key" -in "$T/plain.eml" -binary -nodetach -keyopt rsa_padding_mode:pss -keyopt rsa_pss_saltlen:20 -outform DER -out $C/cms/rsa-pss-salt20.der
openssl cms -sign -signer "$T/p256.pem" -inkey "$T/p256.key" -in "$T/plain.eml" -binary -nodetach -noattr -outform DER -out $C/cms/p256-no-attributes.der

# --- SMTP transcripts ------------------------------------------------------------------------
{
  printf 'EHLO client.hanoi.gov.vn\r\nMAIL FROM:<%s> SIZE=1000 BODY=8BITMIME\r\nRCPT TO:<vanphong@hanoi.gov.vn> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;vanphong@hanoi.gov.vn\r\nDATA\r\n' "$ADDR"
  crlf "$T/plain.eml" | sed 's/^\.\./.../'
  printf '.\r\nQUIT\r\n'
} > $C/smtp_reader/session.txt
printf 'EHLO x\r\nSTARTTLS\r\nEHLO pipelined-after-starttls\r\n' > $C/smtp_reader/starttls.txt
printf 'EHLO x\r\nMAIL FROM:<@relay.example:a@b.example>\r\nRCPT TO:<a%%b@hanoi.gov.vn>\r\nRCPT TO:<user@domain.>\r\nRCPT TO:<"quoted local"@hanoi.gov.vn>\r\nRCPT TO:<postmaster>\r\nAUTH PLAIN AHZhbnRodQBwYXNz\r\nNOOP\r\nRSET\r\nVRFY a\r\nHELP\r\nBDAT 10 LAST\r\nQUIT\r\n' > $C/smtp_reader/paths.txt
printf 'HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@hanoi.gov.vn>\r\nDATA\r\nSubject: smuggle\r\n\r\nbody\n.\r\nMAIL FROM:<evil@x>\r\n\r\n.\r\nQUIT\r\n' > $C/smtp_reader/smuggling.txt

# --- time-stamping answers (RFC 3161), from a TSA the throwaway CA issues ---------------------
./make-tsa-seeds.sh seed-ca.pem "$T/ca.key"

# --- policy and calendar files ----------------------------------------------------------------
cp ../policies/default.toml ../policies/nd30-2020.toml $C/policy/
cp ../policies/calendar/2025.toml ../policies/calendar/2026.toml $C/calendar/
echo "seeds written under $C/ and seed-ca.pem"
