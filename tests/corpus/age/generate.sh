#!/bin/sh
# Writes the malformed age files of the bad-input corpus (tests/corpus/age/*.age)
# with the real `age` CLI, then damages copies of them with python3.
#
#   sh tests/corpus/age/generate.sh
#
# Every file is meant to be read with identity.txt, a test identity committed
# on purpose (it decrypts only these fake values). age encryption is random,
# so re-running this script gives different bytes with the same defects; the
# files made by hand (scrypt headers, version lines) are the same every time.
# The expected error of each file is in tests/corpus/MANIFEST.tsv.
set -eu
cd "$(dirname "$0")"
command -v age >/dev/null && command -v age-keygen >/dev/null || {
    echo "generate.sh needs the age CLI (Debian package age)" >&2
    exit 1
}
umask 077

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -f identity.txt ]; then
    age-keygen -o identity.txt 2>/dev/null
fi
recipient=$(age-keygen -y identity.txt)
age-keygen -o "$tmp/other1.txt" 2>/dev/null
age-keygen -o "$tmp/other2.txt" 2>/dev/null
age-keygen -o "$tmp/other3.txt" 2>/dev/null

# The canary every plaintext holds; it must never show in envcloak's output.
canary=fake-corpus-canary-5520
good="API_KEY=$canary
OTHER=fake-corpus-other-value
"

enc() { # enc OUTPUT [age options...]  (plaintext on stdin)
    out=$1
    shift
    age -r "$recipient" "$@" -o "$out"
}

rm -f ./*.age

# Files that are not age files at all.
printf '%s' "$good" >not_age_plaintext.age
: >empty.age
printf 'age-encryption.org/' >magic_only.age
printf 'age-encryption.org/v1' >magic_without_newline.age
printf 'age-encryption.org/v2\n-> X25519 AAAA\nAAAA\n--- AAAA\n' >unknown_version.age
printf '\0\0\0\0age-encryption.org/v1\n' >nul_bytes_before_magic.age

# A good file and its armored twin, the base of the damaged ones.
printf '%s' "$good" | enc "$tmp/good.age"
printf '%s' "$good" | enc "$tmp/good_armored.age" -a

# Decrypts, but not with identity.txt.
printf '%s' "$good" | age -r "$(age-keygen -y "$tmp/other1.txt")" -o wrong_identity.age
printf '%s' "$good" | age -r "$(age-keygen -y "$tmp/other1.txt")" -r "$(age-keygen -y "$tmp/other2.txt")" \
    -r "$(age-keygen -y "$tmp/other3.txt")" -o wrong_identity_three_recipients.age

# Plaintexts that decrypt but are not dotenv documents envcloak accepts.
printf 'API_KEY=%s\nLATIN1=caf\351\n' "$canary" | enc invalid_utf8_plaintext.age
printf '\377\376A\000=\000x\000\n\000' | enc utf16_plaintext.age
printf 'API_KEY=%s\nBINARY=\200\201\202\n' "$canary" | enc invalid_utf8_continuation.age
printf 'OK=fake\nAPI_KEY=%s\000tail\n' "$canary" | enc nul_in_value.age
printf 'OK=fake\nAPI_KEY="%s\\0\000"\n' "$canary" | enc nul_in_quoted_value.age
printf 'OK=fake\nAP\000I_KEY=%s\n' "$canary" | enc nul_in_name.age
printf "OK=fake\n'\033[2J'=%s\000\n" "$canary" | enc nul_value_control_name.age
printf 'OK=fake\n1API_KEY=%s\n' "$canary" | enc invalid_variable_name.age
printf 'API_KEY=%s\n-----BEGIN FAKE KEY-----\nfake-key-body\n' "$canary" | enc unquoted_multiline.age
printf 'API_KEY="%s\nno closing quote\n' "$canary" | enc unterminated_quote.age
python3 -c '
import sys
canary = sys.argv[1]
# Lines longer than a 64 KiB age chunk, each with a defect at its end.
sys.stdout.write("API_KEY=" + canary + "\nLONG=\"" + "x" * 70000 + "\n")
' "$canary" | enc long_line_unterminated.age
python3 -c '
import sys
sys.stdout.write("API_KEY=" + sys.argv[1] + "\n" + "N" * 70000 + "\n")
' "$canary" | enc long_name_without_equals.age
python3 -c '
import sys
sys.stdout.write("API_KEY=" + sys.argv[1] + "\nLONG=" + "v" * 70000 + "\0\n")
' "$canary" | enc long_value_with_nul.age
python3 -c '
import sys
sys.stdout.write("API_KEY=" + sys.argv[1] + "\n" + "\n" * 70000 + "BAD LINE\n")
' "$canary" | enc error_after_many_lines.age

# Damaged copies of good.age / good_armored.age.
python3 - "$tmp/good.age" "$tmp/good_armored.age" <<'PY'
import sys
good = open(sys.argv[1], "rb").read()
armored = open(sys.argv[2], "rb").read()
mac_at = good.index(b"\n--- ") + 5
header_end = good.index(b"\n", mac_at) + 1
payload = good[header_end:]

def write(name, data):
    open(name, "wb").write(data)

def flip(data, at, bit=0x01):
    data = bytearray(data)
    data[at] ^= bit
    return bytes(data)

write("tampered_header_mac.age", flip(good, mac_at + 3, 0x02))
write("tampered_stanza_body.age", flip(good, good.index(b"\n", good.index(b"-> X25519")) + 3, 0x02))
write("tampered_stanza_argument.age", flip(good, good.index(b"-> X25519 ") + 13, 0x02))
write("tampered_payload_nonce.age", flip(good, header_end + 2))
write("tampered_payload_middle.age", flip(good, header_end + 16 + 5))
write("tampered_payload_tag.age", flip(good, len(good) - 1))
write("header_mac_too_short.age", good[:mac_at] + good[mac_at:header_end - 5] + b"\n" + payload)
write("header_without_mac_line.age", good[:mac_at - 5] + b"\n" + payload)
write("header_crlf.age", good[:header_end].replace(b"\n", b"\r\n") + payload)
write("stanza_without_argument.age", good.replace(good[good.index(b"-> X25519 "):good.index(b"\n", good.index(b"-> X25519 "))], b"-> X25519", 1))
write("stanza_body_not_base64.age", good[:good.index(b"\n", good.index(b"-> X25519")) + 1] + b"!!!!" + good[good.index(b"\n", good.index(b"-> X25519")) + 5:])
write("truncated_in_header.age", good[:mac_at - 20])
write("truncated_at_header_end.age", good[:header_end])
write("truncated_in_nonce.age", good[:header_end + 8])
write("truncated_after_nonce.age", good[:header_end + 16])
write("truncated_in_payload.age", good[:len(good) - 17])
write("truncated_last_byte.age", good[:-1])
write("trailing_garbage.age", good + b"\0fake-trailing-bytes")
write("payload_duplicated.age", good + payload)
lines = armored.split(b"\n")
write("armor_bad_base64.age", armored.replace(lines[1], b"*" + lines[1][1:], 1))
write("armor_without_end.age", b"\n".join(l for l in lines if not l.startswith(b"-----END")))
write("armor_truncated.age", armored[:len(armored) // 2])
write("armor_long_lines.age", lines[0] + b"\n" + b"".join(lines[1:-2]) + b"\n" + lines[-2] + b"\n")
write("armor_tampered_payload.age", armored.replace(lines[-3], lines[-3][:-3] + (b"A" if lines[-3][-3:-2] != b"A" else b"B") + lines[-3][-2:], 1))
PY

# Passphrase (scrypt) files, written by hand: a salt, the work factor log2 N,
# a 32-byte wrapped key, a header MAC and a payload nonce. envcloak must refuse
# a huge work factor before asking for a passphrase or running scrypt.
scrypt() { # scrypt OUTPUT LOG_N [extra stanza]
    {
        printf 'age-encryption.org/v1\n'
        printf -- '-> scrypt c2FsdHNhbHRzYWx0c2FsdA %s\n' "$2"
        printf 'd3JhcHBlZC1maWxlLWtleS1ieXRlcy0zMi1ieXRlcyE\n'
        if [ $# -gt 2 ]; then printf '%s\n' "$3"; fi
        printf -- '--- bWFjLW1hYy1tYWMtbWFjLW1hYy1tYWMtbWFjLW1hYzI\n'
        printf 'nonce-nonce-16b!'
        printf 'not a real payload'
    } >"$1"
}
scrypt scrypt_work_factor_40.age 40
scrypt scrypt_work_factor_64.age 64
scrypt scrypt_work_factor_255.age 255
scrypt scrypt_work_factor_21.age 21
scrypt scrypt_work_factor_18_no_terminal.age 18
scrypt scrypt_with_x25519_stanza.age 18 "-> X25519 $(printf 'fake' | base64)
AAAA"
