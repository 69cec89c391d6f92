# --pre-dump then a dump with --parent-path: the second dump only has what changed, and
# the container restores from the pair.
. /extra/vm-lib/lib.sh
cleanup_on_exit c4
make_bundle || exit 1
start_counter c4 || exit 1
wait_count 5 || exit 1
mkdir -p /tmp/ck4
$V checkpoint --pre-dump --image-path /tmp/ck4/pre c4 || { criu_log /tmp/ck4/pre; exit 1; }
$V state c4 | grep -q '"running"' || { echo "c4 not running after --pre-dump"; exit 1; }
wait_count $(( $(count) + 3 )) || exit 1
$V checkpoint --image-path /tmp/ck4/full --parent-path ../pre c4 || { ls -l /tmp/ck4/pre /tmp/ck4/full; criu_log /tmp/ck4/pre; criu_log /tmp/ck4/full; exit 1; }
[ -L /tmp/ck4/full/parent ] || { echo "no parent link in the dump"; ls -l /tmp/ck4/full; exit 1; }
at_dump=$(count)
pre_kb=$(du -sk /tmp/ck4/pre | cut -f1); full_kb=$(du -sk /tmp/ck4/full | cut -f1)
nothing_left c4 || exit 1
restore_counter c4 /tmp/ck4/full || { criu_log /tmp/ck4/full; exit 1; }
expect_resumed $at_dump || exit 1
$V delete --force c4 || exit 1
nothing_left c4 || exit 1
echo "pre-dump ${pre_kb} KiB, incremental dump ${full_kb} KiB; restored and counting"
