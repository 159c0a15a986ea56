#!/bin/sh
# install-ca.sh: install (or remove) the Cafilprox CA certificate in the
# operating system trust store of Debian/Ubuntu, Alpine, RHEL/Fedora/CentOS/
# Amazon Linux, openSUSE/SLES and macOS.
#
# Usage: install-ca.sh [--os debian|alpine|rhel|suse|macos] [--uninstall] [SOURCE]
#
# SOURCE is a PEM file, or an http(s) URL serving it; default
# $CAFILPROX_CA_URL, else http://127.0.0.1:8081/ca.pem (the admin listener).
# Environment overrides (also used by the tests):
#   CAFILPROX_CA_SHA256  expected SHA-256 of the PEM file; refuse on mismatch.
#                        Set it when fetching over plain HTTP.
#   CAFILPROX_CA_NAME    file/label name (default cafilprox-ca)
#   CERT_DIR             anchor directory (default per OS)
#   UPDATE_CMD           command that rebuilds the bundle (default per OS)
#   KEYCHAIN             macOS keychain (default /Library/Keychains/System.keychain)
set -eu

die() { printf 'install-ca: %s\n' "$*" >&2; exit 1; }

os=""
action=install
source=""
while [ $# -gt 0 ]; do
	case "$1" in
	--os) [ $# -ge 2 ] || die "--os needs a value"; os=$2; shift 2 ;;
	--os=*) os=${1#--os=}; shift ;;
	--uninstall) action=uninstall; shift ;;
	-h | --help) sed -n '2,17p' "$0"; exit 0 ;;
	-*) die "unknown option $1" ;;
	*) source=$1; shift ;;
	esac
done
[ -n "$source" ] || source=${CAFILPROX_CA_URL:-http://127.0.0.1:8081/ca.pem}
name=${CAFILPROX_CA_NAME:-cafilprox-ca}

detect_os() {
	if [ "$(uname -s)" = Darwin ]; then echo macos; return; fi
	[ -r /etc/os-release ] || die "cannot detect the OS (no /etc/os-release); use --os"
	# shellcheck disable=SC1091
	ids=$(. /etc/os-release && echo "${ID:-} ${ID_LIKE:-}")
	for id in $ids; do
		case "$id" in
		debian | ubuntu) echo debian; return ;;
		alpine) echo alpine; return ;;
		rhel | fedora | centos | amzn | rocky | almalinux | ol) echo rhel; return ;;
		suse | opensuse | sles | opensuse-leap | opensuse-tumbleweed) echo suse; return ;;
		esac
	done
	die "unsupported OS ($ids); use --os"
}
[ -n "$os" ] || os=$(detect_os)

case "$os" in
debian | alpine)
	# update-ca-certificates only picks up *.crt files from this directory.
	dir=${CERT_DIR:-/usr/local/share/ca-certificates}
	update=${UPDATE_CMD:-update-ca-certificates}
	[ "$action" = install ] || update=${UPDATE_CMD:-update-ca-certificates --fresh}
	;;
rhel)
	dir=${CERT_DIR:-/etc/pki/ca-trust/source/anchors}
	update=${UPDATE_CMD:-update-ca-trust extract}
	;;
suse)
	dir=${CERT_DIR:-/etc/pki/trust/anchors}
	update=${UPDATE_CMD:-update-ca-certificates}
	;;
macos)
	keychain=${KEYCHAIN:-/Library/Keychains/System.keychain}
	;;
*) die "unknown --os $os (debian, alpine, rhel, suse, macos)" ;;
esac

tmp=$(mktemp "${TMPDIR:-/tmp}/cafilprox-ca.XXXXXX")
trap 'rm -f "$tmp"' EXIT

fetch() {
	case "$1" in
	http://* | https://*)
		if command -v curl >/dev/null 2>&1; then
			curl -fsSL --max-time 30 -o "$tmp" "$1" || die "cannot fetch $1"
		elif command -v wget >/dev/null 2>&1; then
			wget -q -T 30 -O "$tmp" "$1" || die "cannot fetch $1"
		else
			die "need curl or wget to fetch $1"
		fi
		;;
	*) [ -r "$1" ] || die "cannot read $1"; cp "$1" "$tmp" ;;
	esac
	grep -q -- '-----BEGIN CERTIFICATE-----' "$tmp" || die "$1 holds no PEM certificate"
	# Never spread a private key to clients by accident.
	if grep -q -- 'PRIVATE KEY-----' "$tmp"; then die "$1 contains a private key; refusing"; fi
	if [ -n "${CAFILPROX_CA_SHA256:-}" ]; then
		if command -v sha256sum >/dev/null 2>&1; then
			sum=$(sha256sum "$tmp" | cut -d' ' -f1)
		else
			sum=$(shasum -a 256 "$tmp" | cut -d' ' -f1)
		fi
		[ "$sum" = "$CAFILPROX_CA_SHA256" ] || die "SHA-256 of $1 is $sum, want $CAFILPROX_CA_SHA256"
	fi
	if command -v openssl >/dev/null 2>&1; then
		openssl x509 -in "$tmp" -noout -subject -fingerprint -sha256 >&2 || die "$1 is not a valid certificate"
	fi
}

if [ "$os" = macos ]; then
	if [ "$action" = uninstall ]; then
		# Certificates are labelled by their subject CN, "Cafilprox CA <host> <id>".
		while security find-certificate -c "Cafilprox CA" "$keychain" >/dev/null 2>&1; do
			security delete-certificate -c "Cafilprox CA" "$keychain"
		done
		echo "install-ca: removed Cafilprox CA certificates from $keychain"
		exit 0
	fi
	fetch "$source"
	security add-trusted-cert -d -r trustRoot -k "$keychain" "$tmp"
	echo "install-ca: trusted $source in $keychain"
	exit 0
fi

target="$dir/$name.crt"
# $update is a command line: word splitting is wanted.
if [ "$action" = uninstall ]; then
	rm -f "$target"
	# shellcheck disable=SC2086
	$update
	echo "install-ca: removed $target"
	exit 0
fi
fetch "$source"
mkdir -p "$dir"
# Write then rename so a concurrent bundle rebuild never sees half a file.
cp "$tmp" "$target.tmp"
chmod 644 "$target.tmp"
mv "$target.tmp" "$target"
# shellcheck disable=SC2086
$update
echo "install-ca: installed $target"
