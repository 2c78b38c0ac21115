#!/usr/bin/env bash
# The test command: installs what the tests use when it is missing (Debian packages and two
# Python packages), then runs `cargo test` with the arguments given. On a fresh Debian
# machine, as root (or with sudo for apt-get and pip): tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
need=()
lean=()
# SMTP clients of the tests besides the Rust one and Python's smtplib
command -v swaks >/dev/null 2>&1 || need+=(swaks)
# The S/MIME referees: OpenSSL, GnuPG's gpgsm, NSS's cmsutil (and certutil for pdfsig)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v gpgsm >/dev/null 2>&1 || need+=(gpgsm)
command -v certutil >/dev/null 2>&1 || need+=(libnss3-tools)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-pip)
# The second database (.ci/run starts a throw-away server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# The HTML report screenshot test (tests/report.rs) renders in headless Chromium
[ -x /usr/bin/chromium ] || need+=(chromium)
# PDF tests (tests/pdf.rs): Ghostscript makes documents, qpdf encrypts them, pdfsig validates
command -v gs >/dev/null 2>&1 || need+=(ghostscript)
command -v qpdf >/dev/null 2>&1 || need+=(qpdf)
command -v pdfsig >/dev/null 2>&1 || need+=(poppler-utils)
# Keys on a token (tests/token*.rs): SoftHSM2 and OpenSC's pkcs11-tool
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
command -v pkcs11-tool >/dev/null 2>&1 || need+=(opensc)
# LibreOffice (headless Writer) is one of the PDF producers of tests/pdf.rs; without its
# recommends, which would bring a desktop.
command -v soffice >/dev/null 2>&1 || lean+=(libreoffice-writer-nogui)
if [ ${#need[@]} -gt 0 ] || [ ${#lean[@]} -gt 0 ]; then
  echo "== installing: ${need[*]} ${lean[*]}"
  $SUDO apt-get update -qq
  [ ${#need[@]} -eq 0 ] || $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  [ ${#lean[@]} -eq 0 ] || $SUDO apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null
fi

# pyHanko signs and validates PDFs and reportlab makes them (tests/pdf/tool.py)
if ! python3 -c 'import pyhanko, pyhanko_certvalidator, reportlab' >/dev/null 2>&1; then
  echo "== installing: pyhanko, reportlab (PyPI)"
  $SUDO python3 -m pip install -q --break-system-packages \
    "pyhanko==0.38.0" "pyhanko-certvalidator==0.33.0" "reportlab==5.1.0" "pyhanko-cli==0.6.0" 2>/dev/null \
  || $SUDO python3 -m pip install -q \
    "pyhanko==0.38.0" "pyhanko-certvalidator==0.33.0" "reportlab==5.1.0" "pyhanko-cli==0.6.0"
fi

exec cargo test "$@"
