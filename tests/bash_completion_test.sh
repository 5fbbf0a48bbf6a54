#!/usr/bin/env bash
# packaging/bash-completion/taskq offers the subcommands, then each one's
# flags as its --help lists them.
# Usage: bash_completion_test.sh TASKQ_BINARY COMPLETION_SCRIPT
set -uo pipefail
taskq=$1
source "$2"
fail=0
complete_line() {  # the words of a command line, the last one being completed
  COMP_WORDS=("$taskq" "${@}")
  COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
  _taskq
  echo "${COMPREPLY[*]}"
}
expect() {  # expect WHAT-IS-OFFERED WORD... ; fails unless every word of WHAT is offered
  local want=$1; shift
  local got; got=$(complete_line "$@")
  for w in $want; do
    if [[ " $got " != *" $w "* ]]; then
      echo "FAIL: taskq $* <TAB> offered '$got', not '$w'"; fail=1
    fi
  done
}
expect "status" st
expect "submit results status watch failed retry purge keys" ""
expect "--detach --job --square --tasks" submit --
expect "--results" results job1 --res
expect "--json" status --j
expect "--interval" watch --int
expect "--all --queue" retry --
expect "--yes" purge tasks --y
expect "--role --authkey-file" keys --
expect "worker submitter" keys --role ""
got=$(complete_line failed --server "")
[[ -z $got ]] || { echo "FAIL: a --server value completed to '$got'"; fail=1; }
[[ $fail == 0 ]] && echo "bash completion of taskq: all offered"
exit $fail
