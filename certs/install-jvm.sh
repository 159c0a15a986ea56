#!/bin/sh
# install-jvm.sh: import (or remove) the Cafilprox CA in a JVM trust store
# (the JDK's cacerts by default), for Maven, Gradle, sbt and other JVM tools.
# Alternative without touching the JDK: point the JVM at the PKCS#12 trust
# store Cafilprox writes (data_dir/ca/truststore.p12, see `cafilprox env`).
#
# Usage: install-jvm.sh [--uninstall] [SOURCE]
#
# SOURCE is a PEM file or an http(s) URL (default $CAFILPROX_CA_URL, else
# http://127.0.0.1:8081/ca.pem). Environment overrides:
#   KEYTOOL    keytool binary (default $JAVA_HOME/bin/keytool, else keytool)
#   CACERTS    trust store file (default: the JDK's, via keytool -cacerts)
#   STOREPASS  trust store password (default changeit, the JDK default)
#   CAFILPROX_CA_NAME   alias (default cafilprox-ca)
#   CAFILPROX_CA_SHA256 expected SHA-256 of the PEM file
set -eu

die() { printf 'install-jvm: %s\n' "$*" >&2; exit 1; }

action=install
source=""
while [ $# -gt 0 ]; do
	case "$1" in
	--uninstall) action=uninstall; shift ;;
	-h | --help) sed -n '2,17p' "$0"; exit 0 ;;
	-*) die "unknown option $1" ;;
	*) source=$1; shift ;;
	esac
done
[ -n "$source" ] || source=${CAFILPROX_CA_URL:-http://127.0.0.1:8081/ca.pem}
alias=${CAFILPROX_CA_NAME:-cafilprox-ca}
storepass=${STOREPASS:-changeit}
if [ -n "${KEYTOOL:-}" ]; then
	keytool=$KEYTOOL
elif [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/keytool" ]; then
	keytool=$JAVA_HOME/bin/keytool
else
	keytool=keytool
fi
# keytool -cacerts (JDK 9+) finds the JDK's own store wherever it lives.
if [ -n "${CACERTS:-}" ]; then
	set -- -keystore "$CACERTS"
else
	set -- -cacerts
fi

# Delete first: importing over an existing alias fails, and a rotated CA must
# replace the old one.
"$keytool" -delete -noprompt -alias "$alias" -storepass "$storepass" "$@" >/dev/null 2>&1 || true
if [ "$action" = uninstall ]; then
	echo "install-jvm: removed alias $alias"
	exit 0
fi

tmp=$(mktemp "${TMPDIR:-/tmp}/cafilprox-ca.XXXXXX")
trap 'rm -f "$tmp"' EXIT
case "$source" in
http://* | https://*)
	if command -v curl >/dev/null 2>&1; then
		curl -fsSL --max-time 30 -o "$tmp" "$source" || die "cannot fetch $source"
	elif command -v wget >/dev/null 2>&1; then
		wget -q -T 30 -O "$tmp" "$source" || die "cannot fetch $source"
	else
		die "need curl or wget to fetch $source"
	fi
	;;
*) [ -r "$source" ] || die "cannot read $source"; cp "$source" "$tmp" ;;
esac
grep -q -- '-----BEGIN CERTIFICATE-----' "$tmp" || die "$source holds no PEM certificate"
if grep -q -- 'PRIVATE KEY-----' "$tmp"; then die "$source contains a private key; refusing"; fi
if [ -n "${CAFILPROX_CA_SHA256:-}" ]; then
	if command -v sha256sum >/dev/null 2>&1; then
		sum=$(sha256sum "$tmp" | cut -d' ' -f1)
	else
		sum=$(shasum -a 256 "$tmp" | cut -d' ' -f1)
	fi
	[ "$sum" = "$CAFILPROX_CA_SHA256" ] || die "SHA-256 of $source is $sum, want $CAFILPROX_CA_SHA256"
fi

"$keytool" -importcert -noprompt -trustcacerts -alias "$alias" -file "$tmp" -storepass "$storepass" "$@"
echo "install-jvm: imported $source as $alias"
