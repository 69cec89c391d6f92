#!/bin/bash
# The documentation generated from the command line matches it: every verb's
# --help has an example (`vessel __doc check`), every flag of every --help is in
# its man page and in the bash completion, the man pages render without groff
# warnings, the completion scripts parse; a misspelt verb gets "did you mean".
#   cli_doc_test.sh VESSEL DOC_DIR     (DOC_DIR: build/doc, written after linking vessel)
set -uo pipefail
vessel=$1 doc=$2
fail=0
bad() { echo "FAIL: $*"; fail=1; }

"$vessel" __doc check || bad "__doc check"
"$vessel" --help | grep -q "^Example: " || bad "vessel --help has no example"

# Misspelt verbs, top level and nested; exit 1 with one line.
expect_error() {  # expect_error "ARGS" "MESSAGE"
  local out rc
  out=$("$vessel" $1 2>&1 >/dev/null); rc=$?
  [[ $rc == 1 && $out == "vessel: $2" ]] || bad "vessel $1: exit $rc, '$out', expected 'vessel: $2'"
}
expect_error "strat c1" 'unknown command "strat"; did you mean "start"?'
expect_error "--root /tmp/x delte c1" 'unknown command "delte"; did you mean "delete"?'
expect_error "image lss" 'unknown command "image lss"; did you mean "image ls"?'
expect_error "vm rnu --kernel k" 'unknown command "vm rnu"; did you mean "vm run"?'
expect_error "frobnicate" "unknown command \"frobnicate\" (see 'vessel --help')"

[[ -f $doc/man8/vessel.8.gz && -f $doc/vessel.bash && -f $doc/_vessel ]] || { bad "no generated docs in $doc"; exit 1; }
bash -n "$doc/vessel.bash" || bad "vessel.bash does not parse"
if command -v zsh >/dev/null; then zsh -n "$doc/_vessel" || bad "_vessel does not parse"; fi

# Every man page renders without warnings (groff directly: man-db's man adds a second a page).
for page in "$doc"/man8/*.8.gz; do
  warnings=$(zcat "$page" | groff -man -Tutf8 -ww -z 2>&1)
  [[ -z $warnings ]] || bad "$(basename "$page"): $warnings"
done

# Each verb's flags, from its --help, in its man page and in the completion table.
verbs=$("$vessel" __doc verbs)
declare -A pages
while read -r v; do
  top=${v%% *}
  [[ -f $doc/man8/vessel-$top.8.gz ]] || { bad "no man page for $top"; continue; }
  [[ -n ${pages[$top]:-} ]] || pages[$top]=$(zcat "$doc/man8/vessel-$top.8.gz" | groff -man -Tascii -P -cbou -rLL=200n 2>/dev/null)
  page=${pages[$top]}
  # The OPTIONS lines of --help ("  -b,--bundle TEXT  ..."): their first word, not the texts.
  for flag in $("$vessel" $v --help | awk '/^ +-/ {print $1}' | grep -oE -- '--[a-z][a-z0-9-]+' | grep -v -- '^--help$' | sort -u); do
    grep -q -- "$flag" <<<"$page" || bad "man vessel-$top lacks $flag of '$v'"
    grep -q -- "\['vessel $v'\]=.*$flag" "$doc/vessel.bash" || bad "bash completion of '$v' lacks $flag"
  done
done <<<"$verbs"
[[ $fail == 0 ]] && echo "PASS: $(wc -l <<<"$verbs") verbs"
exit $fail
