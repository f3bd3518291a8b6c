#!/usr/bin/env bash
# Install stoken on a systemd machine (a small VPS), or stage the install into a DESTDIR.
#
#   sudo scripts/install.sh --domain example.org [--hostname mail.example.org]
#
# What it does, and what a second run does (the install is idempotent):
#   binary   <prefix>/bin/stoken (default /usr/local/bin/stoken)    always replaced (upgrade)
#   user     the `stoken` system user and group                      created if missing
#   config   /etc/stoken/stoken.json, from `stoken init --system`     kept if present
#   data     /var/lib/stoken: database, key file (0600), TLS key,     kept if present
#            Maildirs, spool; owned by the service user
#   unit     /etc/systemd/system/stoken.service (scripts/stoken.service with the paths filled in)
#                                                                     always rewritten
#   service  enabled, then started (first install) or restarted (upgrade): only when
#            installing into the live system (no DESTDIR) and systemd is running
#
# With --destdir DIR (or DESTDIR=DIR) everything is written below DIR while the files name
# the final paths (/etc/stoken, /var/lib/stoken, <prefix>/bin): a staged install for a
# package or an image. The user is still created when running as root, so that the staged
# files can be owned by it; nothing is started.
#
# The first install prints the first user's password (from `stoken init`) once.
set -euo pipefail

CONFIG=/etc/stoken/stoken.json
STATE_DIR=/var/lib/stoken
UNIT=/etc/systemd/system/stoken.service

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
binary=""
prefix=/usr/local
destdir="${DESTDIR:-}"
domain=""
host=""
admin=""
service_user=stoken
start=yes
template="$script_dir/stoken.service"

usage() {
  cat <<EOF
usage: install.sh [--binary FILE] [--prefix DIR] [--destdir DIR] [--domain DOMAIN]
                  [--hostname HOST] [--admin ADDRESS] [--service-user NAME] [--no-start]

  --binary FILE        the stoken executable to install (default: dist/stoken of this
                       checkout, else ./stoken)
  --prefix DIR         install the binary as DIR/bin/stoken (default /usr/local)
  --destdir DIR        stage everything below DIR (also: DESTDIR=DIR); starts nothing
  --domain DOMAIN      the mail domain (required by the first install)
  --hostname HOST      the server's host name (default: hostname -f)
  --admin ADDRESS      the first user (default: admin@DOMAIN)
  --service-user NAME  the system user the service runs as (default stoken)
  --no-start           do not enable, start or restart the service
EOF
}

die() {
  echo "install.sh: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  opt="$1"
  val=""
  case "$opt" in
    --*=*)
      val="${opt#*=}"
      opt="${opt%%=*}"
      ;;
    --binary | --prefix | --destdir | --domain | --hostname | --admin | --service-user)
      [ $# -ge 2 ] || die "$opt needs a value"
      val="$2"
      shift
      ;;
  esac
  case "$opt" in
    --binary) binary="$val" ;;
    --prefix) prefix="$val" ;;
    --destdir) destdir="$val" ;;
    --domain) domain="$val" ;;
    --hostname) host="$val" ;;
    --admin) admin="$val" ;;
    --service-user) service_user="$val" ;;
    --no-start) start=no ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      die "unknown option \"$opt\""
      ;;
  esac
  shift
done

case "$prefix" in /*) ;; *) die "--prefix must be an absolute path: \"$prefix\"" ;; esac
if [ -n "$destdir" ]; then
  mkdir -p "$destdir"
  destdir="$(cd "$destdir" && pwd)"
fi
# A path of the installed system, as written now (below DESTDIR when staging).
at() { printf '%s%s' "$destdir" "$1"; }

is_root=no
[ "$(id -u)" -eq 0 ] && is_root=yes

# --- binary -------------------------------------------------------------------------------
if [ -z "$binary" ]; then
  if [ -x "$script_dir/../dist/stoken" ]; then
    binary="$script_dir/../dist/stoken"
  elif [ -x ./stoken ]; then
    binary=./stoken
  else
    die "no binary found: build one with \`make binary\` or pass --binary FILE"
  fi
fi
[ -f "$binary" ] && [ -x "$binary" ] || die "not an executable file: \"$binary\""
"$binary" --help >/dev/null 2>&1 || die "\"$binary\" does not run on this machine (stoken --help failed)"
[ -f "$template" ] || die "the unit template is missing: \"$template\""

bindir="$prefix/bin"
target="$(at "$bindir")/stoken"
install -d -m 0755 "$(at "$bindir")"
if [ -e "$target" ] && cmp -s "$binary" "$target"; then
  echo "binary:  $bindir/stoken (unchanged)"
else
  what=installed
  [ -e "$target" ] && what=upgraded
  # Copy beside the target, then rename over it: a running service keeps its old file.
  tmp="$(at "$bindir")/.stoken.install.$$"
  cp "$binary" "$tmp"
  chmod 0755 "$tmp"
  mv -f "$tmp" "$target"
  echo "binary:  $bindir/stoken ($what)"
fi

# --- service user -------------------------------------------------------------------------
if [ "$is_root" = yes ]; then
  if getent passwd "$service_user" >/dev/null; then
    echo "user:    $service_user (exists)"
  else
    nologin=/usr/sbin/nologin
    [ -x "$nologin" ] || nologin=/sbin/nologin
    [ -x "$nologin" ] || nologin=/bin/false
    useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
      --shell "$nologin" --comment "stoken mail server" "$service_user"
    echo "user:    $service_user (created)"
  fi
else
  echo "user:    not running as root: $service_user not created, files owned by $(id -un)"
fi

# --- configuration and data ---------------------------------------------------------------
config_file="$(at "$CONFIG")"
state="$(at "$STATE_DIR")"
if [ -e "$config_file" ]; then
  echo "config:  $CONFIG (kept)"
  echo "data:    $STATE_DIR (kept)"
else
  # Never put a fresh key file or database over existing ones: every issued token and every
  # user would be lost.
  for f in keys.json stoken.db; do
    if [ -e "$state/$f" ]; then
      die "$STATE_DIR/$f exists but $CONFIG does not: restore the configuration, or move $STATE_DIR away for a fresh install"
    fi
  done
  [ -n "$domain" ] || die "the first install needs --domain DOMAIN (the mail domain)"
  [ -n "$host" ] || host="$(hostname -f 2>/dev/null || hostname)"

  stage="$(mktemp -d "${TMPDIR:-/tmp}/stoken-install.XXXXXX")"
  trap 'rm -rf "$stage"' EXIT
  init_args=(init --system --dir "$stage/data" --domain "$domain" --hostname "$host")
  [ -n "$admin" ] && init_args+=(--user "$admin")
  if ! "$target" "${init_args[@]}" >"$stage/init.out"; then
    die "stoken init failed (see above)"
  fi

  # init writes paths relative to its directory; the config lives apart from the data, so
  # they become absolute paths below $STATE_DIR.
  sed -E \
    -e "s#^([[:space:]]*\"(cert|key|key_file|mail_root|spool_dir)\": \")([^/\"][^\"]*)\"#\\1$STATE_DIR/\\3\"#" \
    -e "s#^([[:space:]]*\"url\": \"file:)([^/\"][^\"]*)\"#\\1$STATE_DIR/\\2\"#" \
    "$stage/data/stoken.json" >"$stage/stoken.json"
  for key in cert key key_file mail_root spool_dir; do
    grep -qE "^[[:space:]]*\"$key\": \"$STATE_DIR/" "$stage/stoken.json" ||
      die "unexpected configuration from stoken init (\"$key\" is not a path below $STATE_DIR)"
  done
  grep -qE "^[[:space:]]*\"url\": \"file:$STATE_DIR/" "$stage/stoken.json" ||
    die "unexpected configuration from stoken init (database.url is not a file below $STATE_DIR)"
  rm "$stage/data/stoken.json"

  install -d -m 0755 "$(dirname "$config_file")"
  install -d -m 0700 "$state"
  # Move the data set (database, key file, TLS files, Maildirs, spool) into place as it is:
  # init created the secrets with mode 0600 from the start.
  (cd "$stage/data" && tar -cf - .) | (cd "$state" && tar -xpf -)
  install -m 0640 "$stage/stoken.json" "$config_file"
  if [ "$is_root" = yes ]; then
    chown -R "$service_user:$service_user" "$state"
    chown "root:$service_user" "$config_file"
  fi
  echo "config:  $CONFIG (created by stoken init --system)"
  echo "data:    $STATE_DIR (created: database, key file, self-signed certificate, Maildirs)"
fi

# --- systemd unit -------------------------------------------------------------------------
unit_file="$(at "$UNIT")"
install -d -m 0755 "$(dirname "$unit_file")"
sed -e "s#@USER@#$service_user#g" -e "s#@BINDIR@#$bindir#g" \
  -e "s#@CONFIG@#$CONFIG#g" -e "s#@STATE_DIR@#$STATE_DIR#g" "$template" >"$unit_file.tmp.$$"
if grep -q '@[A-Z_]*@' "$unit_file.tmp.$$"; then
  rm -f "$unit_file.tmp.$$"
  die "the unit template has a placeholder this script does not fill"
fi
if [ -e "$unit_file" ] && cmp -s "$unit_file.tmp.$$" "$unit_file"; then
  rm -f "$unit_file.tmp.$$"
  echo "unit:    $UNIT (unchanged)"
else
  chmod 0644 "$unit_file.tmp.$$"
  mv -f "$unit_file.tmp.$$" "$unit_file"
  echo "unit:    $UNIT (written)"
fi

# --- service ------------------------------------------------------------------------------
if [ -n "$destdir" ]; then
  echo "service: not started (staged into $destdir)"
elif [ "$start" = no ]; then
  echo "service: not started (--no-start)"
elif [ "$is_root" != yes ] || [ ! -d /run/systemd/system ]; then
  echo "service: systemd is not running here (or not root): start it with"
  echo "         systemctl daemon-reload && systemctl enable --now stoken"
else
  systemctl daemon-reload
  systemctl enable --quiet stoken
  if systemctl is-active --quiet stoken; then
    systemctl restart stoken
    echo "service: restarted"
  else
    systemctl start stoken
    echo "service: started"
  fi
fi

if [ -n "${stage:-}" ] && [ -f "$stage/init.out" ]; then
  echo
  # The first user's password, shown once (see `stoken init`); the paths init printed are
  # those of its staging directory, so only the user lines are repeated.
  if grep -q '^First user:' "$stage/init.out"; then
    sed -n -e '/^First user:/,/^Save it now/p' "$stage/init.out"
  else
    cat "$stage/init.out"
  fi
fi
