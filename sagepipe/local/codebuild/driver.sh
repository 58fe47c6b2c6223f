# shellcheck shell=bash
# The local CodeBuild's driver: runs one build's buildspec commands with CodeBuild's buildspec 0.2 semantics, in
# one bash process (sagepipe.local.codebuild.driver explains the rules and writes the files this script reads).
#
# Usage: bash --noprofile --norc driver.sh RUNTIME_DIR
#   RUNTIME_DIR/commands  the buildspec's commands, NUL-terminated, in buildspec order (a command's index is its
#                         position here)
#   RUNTIME_DIR/plan      what to do, as NUL-terminated words: PHASE <type> <on-failure>, NOTE <text>,
#                         RUN <index>, FINALLY, END, EXPORT <name>
# It writes RUNTIME_DIR/events ("<EPOCHREALTIME>\t<EVENT>\t<args...>" lines: the phases and failures, never read
# from the build's output) and RUNTIME_DIR/exports (NUL-separated name, value pairs: a value may hold any other
# byte); the build log is its stdout.
#
# Each command runs in a subshell of this process and hands its variables, functions, shell options and working
# directory back when it ends: buildspec 0.2 keeps that state from command to command, and the subshell is what
# makes `exit 1` inside a command fail that command only, as it does on CodeBuild, instead of ending the build.
# Everything of the driver's own is named __sp_*, and such names are never carried from a command back into the
# driver; nor are bash's special variables, or CODEBUILD_BUILD_SUCCEEDING, which only the driver sets.

__sp_dir=$1
set --  # the commands see no positional parameters, as on CodeBuild
__sp_events=$__sp_dir/events
__sp_state=$__sp_dir/state
__sp_funcs=$__sp_dir/funcs
__sp_opts=$__sp_dir/opts
__sp_exports=$__sp_dir/exports
mapfile -d '' -t __sp_cmds <"$__sp_dir/commands"
mapfile -d '' -t __sp_plan <"$__sp_dir/plan"

__sp_skip='^(BASH.*|EPOCHREALTIME|EPOCHSECONDS|EUID|PPID|UID|SHELLOPTS|FUNCNAME|GROUPS|LINENO|RANDOM|SRANDOM|SECONDS|HISTCMD|PIPESTATUS|DIRSTACK|PWD|OLDPWD|SHLVL|COMP_.*|_|__sp_.*|CODEBUILD_BUILD_SUCCEEDING)$'

__sp_log() {
  local __sp_t=$EPOCHREALTIME
  printf '[Container] %(%Y/%m/%d %H:%M:%S)T.%s %s\n' "${__sp_t%[.,]*}" "${__sp_t#*[.,]}" "$1"
}

__sp_event() {
  local IFS=$'\t'
  printf '%s\t%s\n' "$EPOCHREALTIME" "$*" >>"$__sp_events"
}

__sp_phase_start() {
  __sp_phase=$1
  __sp_phase_ok=1
  __sp_event PHASE_START "$1"
  __sp_log "Entering phase $1"
}

# $1 phase, $2 its on-failure. CodeBuild's transitions: a failed INSTALL or PRE_BUILD ends the build (no later
# command phase runs); a failed BUILD goes on to POST_BUILD; CONTINUE goes on whatever failed.
__sp_phase_end() {
  if [ "$__sp_phase_ok" = 1 ]; then
    __sp_log "Phase complete: $1 State: SUCCEEDED"
    __sp_log "Phase context status code:  Message: "
    __sp_event PHASE_END "$1" SUCCEEDED
    return 0
  fi
  local __sp_why="Error while executing command: ${__sp_cmds[$__sp_fail_idx]}. Reason: exit status $__sp_fail_rc"
  __sp_log "Phase complete: $1 State: FAILED"
  __sp_log "Phase context status code: COMMAND_EXECUTION_ERROR Message: $__sp_why"
  __sp_event PHASE_END "$1" FAILED
  if [ "$2" = ABORT ] && { [ "$1" = INSTALL ] || [ "$1" = PRE_BUILD ]; }; then
    __sp_aborted=1
  fi
}

__sp_announce() {
  __sp_log "Running command ${__sp_cmds[$1]}"
  : >"$__sp_state"
}

# $1 command index, $2 its exit status; returns non-zero if the command failed.
__sp_check() {
  [ "$2" = 0 ] && return 0
  __sp_log "Command did not exit successfully ${__sp_cmds[$1]} exit status $2"
  __sp_event COMMAND_FAILED "$__sp_phase" "$1" "$2"
  if [ "$__sp_phase_ok" = 1 ]; then
    __sp_fail_idx=$1
    __sp_fail_rc=$2
  fi
  __sp_phase_ok=0
  export CODEBUILD_BUILD_SUCCEEDING=0
  return 1
}

# First thing in a command's subshell: note the variables it starts with (to see which it unsets), arrange for
# its state to be saved however it ends (exit included), and give it the functions and options of the commands
# before it.
__sp_child() {
  local __sp_n
  __sp_start_names=()
  while IFS= read -r __sp_n; do
    [[ $__sp_n =~ $__sp_skip ]] || __sp_start_names+=("$__sp_n")
  done < <(compgen -v)
  trap '__sp_rc=$?; { set +o; shopt -p; } >"$__sp_opts" 2>/dev/null; __sp_save; exit "$__sp_rc"' EXIT
  # shellcheck source=/dev/null
  . "$__sp_funcs" 2>/dev/null
  # shellcheck source=/dev/null
  . "$__sp_opts" 2>/dev/null
}

# Last thing in a command's subshell: write what the driver sources to take the command's state over.
__sp_save() {
  set +o errexit +o nounset +o xtrace +o verbose
  local __sp_n
  local -a __sp_keep=()
  local -A __sp_now=()
  while IFS= read -r __sp_n; do
    [[ $__sp_n =~ $__sp_skip ]] && continue
    __sp_now[$__sp_n]=1
    __sp_keep+=("$__sp_n")
  done < <(compgen -v)
  {
    for __sp_n in "${__sp_start_names[@]}"; do
      [ -n "${__sp_now[$__sp_n]+set}" ] || printf 'unset -v %s\n' "$__sp_n"
    done
    declare -p "${__sp_keep[@]}"
    printf 'builtin cd -- %q\n' "$PWD"
  } >"$__sp_state" 2>/dev/null
  declare -f >"$__sp_funcs" 2>/dev/null
}

: >"$__sp_funcs"
: >"$__sp_opts"
: >"$__sp_exports"
__sp_aborted=0
__sp_active=0  # 1 while a phase runs; an aborted build's later phases are not entered
__sp_go=1      # 0 once a command of the current block failed: the rest of the block is skipped
export CODEBUILD_BUILD_SUCCEEDING=1

# The plan, word by word. This loop is at the top level, not in a function: sourcing a command's state inside a
# function would make its variables local to that function.
for ((__sp_i = 0; __sp_i < ${#__sp_plan[@]}; __sp_i++)); do
  case ${__sp_plan[__sp_i]} in
    PHASE)
      __sp_type=${__sp_plan[__sp_i + 1]}
      __sp_on_failure=${__sp_plan[__sp_i + 2]}
      __sp_i=$((__sp_i + 2))
      __sp_active=$((1 - __sp_aborted))
      __sp_go=1
      if [ "$__sp_active" = 1 ]; then __sp_phase_start "$__sp_type"; fi
      ;;
    NOTE)
      __sp_i=$((__sp_i + 1))
      if [ "$__sp_active" = 1 ]; then __sp_log "${__sp_plan[__sp_i]}"; fi
      ;;
    RUN)
      __sp_i=$((__sp_i + 1))
      __sp_index=${__sp_plan[__sp_i]}
      if [ "$__sp_active" = 1 ] && [ "$__sp_go" = 1 ]; then
        __sp_announce "$__sp_index"
        (
          __sp_child
          eval "${__sp_cmds[$__sp_index]}"
        )
        __sp_rc=$?
        # shellcheck source=/dev/null
        . "$__sp_state" 2>/dev/null
        __sp_check "$__sp_index" "$__sp_rc" || __sp_go=0
      fi
      ;;
    FINALLY)
      __sp_go=1  # finally runs whether the commands failed or not
      ;;
    END)
      if [ "$__sp_active" = 1 ]; then __sp_phase_end "$__sp_type" "$__sp_on_failure"; fi
      __sp_active=0
      ;;
    EXPORT)
      # CodeBuild fixes exported variables when post_build ends.
      __sp_i=$((__sp_i + 1))
      __sp_name=${__sp_plan[__sp_i]}
      if [[ -v $__sp_name ]]; then printf '%s\0%s\0' "$__sp_name" "${!__sp_name}" >>"$__sp_exports"; fi
      ;;
    *)
      __sp_log "[sagepipe local build] the driver's plan has an unknown word: ${__sp_plan[__sp_i]}"
      exit 70
      ;;
  esac
done
__sp_event DONE
