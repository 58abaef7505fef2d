#!/usr/bin/env bash
# Makes the TLS test certificates in DIR (created if missing), with Debian's
# openssl command: a CA, server certificates it signed, a client certificate
# for mTLS, and a key that matches none of them. Keys are mode 0600 (the host
# refuses others). Valid for 2 days (TLS_TEST_CERT_DAYS=N: N days; testssl.sh rates
# under 30 HIGH): made at test time, never committed. Server certificates name a
# CRL distribution point (nothing serves it: testssl.sh rates a certificate
# without CRL or OCSP HIGH, as a public CA's would have one).
#
#   ca.pem ca.key                    the CA (CN=protohost test CA)
#   localhost.pem localhost.key      ECDSA P-256, SAN DNS:localhost, IP:127.0.0.1, IP:::1
#   other.pem other.key              ECDSA P-256, SAN DNS:other.test (an SNI alternative)
#   rsa.pem rsa.key                  RSA 2048, SAN DNS:localhost, IP:127.0.0.1
#   client.pem client.key            ECDSA P-256 client certificate, CN=test-client
#   stranger.key                     an ECDSA key no certificate here matches
#   chain.pem                        localhost.pem followed by ca.pem
#
# Usage: tests/tls/make-test-certs.sh DIR
set -euo pipefail
dir=${1:?usage: make-test-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077
days=${TLS_TEST_CERT_DAYS:-2}
crl="crlDistributionPoints=URI:http://127.0.0.1/protohost-test-ca.crl"
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ec ca.key
openssl req -x509 -new -key ca.key -days "$days" -subj "/CN=protohost test CA" -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

# sign NAME SUBJECT EXTENSIONS: NAME.key must exist; writes NAME.pem signed by the CA.
sign() {
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days "$days" -extfile "$1.ext" \
    -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
ec localhost.key
sign localhost "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
extendedKeyUsage=serverAuth
$crl"
ec other.key
sign other "/CN=other.test" "subjectAltName=DNS:other.test
extendedKeyUsage=serverAuth
$crl"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key 2>/dev/null
sign rsa "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth
$crl"
ec client.key
sign client "/CN=test-client/O=protohost tests" "extendedKeyUsage=clientAuth"
ec stranger.key
cat localhost.pem ca.pem > chain.pem
chmod 600 ./*.key
chmod 644 ./*.pem
