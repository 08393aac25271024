#!/usr/bin/env bash
# A failed write never destroys what was at the output path (issue 20, defect 2): quantize,
# export-lora, imatrix and perplexity --kl-divergence-base
# - into a device node (a private copy of /dev/full made with mknod when root, else a symlink
#   to /dev/full): one error line, exit 1, the node (or link) still there;
# - over an existing file while the file size limit (ulimit -f) stops the write: one error line,
#   exit 1, the old contents intact and no temporary file left beside it;
# - on success: an existing file is replaced keeping its permissions; a symlink to a regular
#   file stays a symlink and its target is replaced.
. "$(dirname "$0")/sh_common.sh"
TINY=$BUILD/tiny.gguf
need "$TINY"
TEXT=$SHARED/text/war-and-peace-30k.txt
STORIES=$M/stories260K.gguf
HAVE_SHARED=0
[ -f "$TEXT" ] && [ -f "$STORIES" ] && [ -f "$M/lora-rank8.gguf" ] && HAVE_SHARED=1

# write_cmd NAME OUT: runs writer NAME with output path OUT.
write_cmd() {
    case $1 in
    quantize) "$BIN" quantize "$TINY" "$2" Q8_0 2 ;;
    export-lora) "$BIN" export-lora -m "$M/mixed-base-q8_0.gguf" --lora "$M/lora-rank8.gguf" -o "$2" ;;
    imatrix) "$BIN" imatrix -m "$STORIES" -f "$TEXT" -o "$2" -c 128 --chunks 2 -t 2 ;;
    perplexity) "$BIN" perplexity -m "$STORIES" -f "$TEXT" -c 128 --chunks 2 --kl-divergence-base "$2" -t 2 ;;
    esac
}
WRITERS=quantize
[ $HAVE_SHARED = 1 ] && WRITERS="quantize export-lora imatrix perplexity" || echo "skip: no shared data for export-lora, imatrix, perplexity"

# A device node: a private copy of /dev/full when we may make one (so a bug cannot remove the
# real one), else a symlink to /dev/full.
DEV=$TMP/full
if [ "$(id -u)" = 0 ] && mknod "$DEV" c 1 7 2>/dev/null; then
    kind="device node"
elif [ -c /dev/full ]; then
    ln -s /dev/full "$DEV"
    kind="symlink to /dev/full"
else
    DEV=
    echo "skip: no /dev/full"
fi
for w in $WRITERS; do
    [ -n "$DEV" ] || break
    write_cmd $w "$DEV" >/dev/null 2>"$TMP/err"
    rc=$?
    if [ $rc = 1 ] && [ "$(wc -l < "$TMP/err" | tr -d ' ')" -ge 1 ] && grep -q "No space left on device" "$TMP/err" \
        && [ -c "$DEV" ] && [ -c /dev/full ]; then
        ok "$w into a full $kind: exit 1, '$(grep -m1 'No space' "$TMP/err")', still there"
    else
        bad "$w into a full $kind: rc $rc, $(ls -l "$DEV" 2>&1), $(cat "$TMP/err")"
    fi
done

# The file size limit makes the write fail part way (SIGXFSZ ignored: write returns EFBIG).
for w in $WRITERS; do
    d=$TMP/fsize-$w
    mkdir "$d"
    printf 'precious\n' > "$d/out"
    (trap '' XFSZ; ulimit -f 8; write_cmd $w "$d/out") >/dev/null 2>"$TMP/err"
    rc=$?
    left=$(ls "$d" | grep -v '^out$')
    if [ $rc = 1 ] && [ "$(cat "$d/out")" = precious ] && [ -z "$left" ] && grep -q "too large\|write failed" "$TMP/err"; then
        ok "$w over an existing file, write fails: exit 1, old file intact, no temporary left"
    else
        bad "$w over an existing file: rc $rc, contents '$(head -c 20 "$d/out")', left '$left', $(cat "$TMP/err")"
    fi
done

# Success: replaced in place, permissions kept; through a symlink the link stays.
printf 'old\n' > "$TMP/keep.gguf"
chmod 640 "$TMP/keep.gguf"
write_cmd quantize "$TMP/keep.gguf" >/dev/null 2>&1
mode=$(stat -c %a "$TMP/keep.gguf")
if [ "$mode" = 640 ] && [ "$(head -c 4 "$TMP/keep.gguf")" = GGUF ]; then
    ok "an existing file is replaced and keeps mode 640"
else
    bad "replaced file: mode $mode, starts '$(head -c 4 "$TMP/keep.gguf")'"
fi
mkdir "$TMP/real"
printf 'old\n' > "$TMP/real/target.gguf"
ln -s real/target.gguf "$TMP/link.gguf"
write_cmd quantize "$TMP/link.gguf" >/dev/null 2>&1
if [ -L "$TMP/link.gguf" ] && [ "$(head -c 4 "$TMP/real/target.gguf")" = GGUF ] && [ "$(ls "$TMP/real")" = target.gguf ]; then
    ok "through a symlink: the link stays, its target is replaced"
else
    bad "through a symlink: $(ls -l "$TMP/link.gguf" "$TMP/real")"
fi
( umask 022; write_cmd quantize "$TMP/new.gguf" >/dev/null 2>&1 )
mode=$(stat -c %a "$TMP/new.gguf" 2>/dev/null)
[ "$mode" = 644 ] && ok "a new file gets the umask's mode (644)" || bad "new file mode '$mode'"

exit $fail
