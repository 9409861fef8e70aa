r"""The shell side of the directory hook (`keyvault hook bash|zsh|fish`).

Before each prompt the hook compares, with shell builtins only, what decides the export:
- the nearest `.keyvault.toml` above the working folder, searched like Python's
  `find_project_file` (the physical folder, any regular file), with the first 4 KiB of its
  text when it is ours (so an edit is noticed at the next prompt; another user's file is
  read by nobody); searched again at every prompt (a few `stat` calls), so a file created,
  edited or removed while the shell sits in the folder counts at the next prompt, as it
  does for `keyvault env`;
- `KEYVAULT_HOME` and `KEYVAULT_HOOK_PROJECT` (what the hook exported last);
- the first 96 bytes of vault.age: its age header, whose first stanza holds a share made
  afresh for every save, so a rotation, an edit or a `sync` that brought a new vault is
  noticed (`hook-env` names the file in `_KEYVAULT_VAULT`), and the first 4 KiB of the
  vault home's config.toml (`_KEYVAULT_CONFIG`), whose `default_base_url` is exported;
- whether the session agent's socket is there (`unlock`, `lock` and expiry); `hook-env`
  names the socket in `_KEYVAULT_SOCKET`; the shell keeps both unexported.
It runs `keyvault hook-env` only when one of them changed while a project file was found or a
project is exported; `hook-env` then decides everything (ownership of the file, the project,
whether the vault opens without asking) through vault/export/hook.py. In a folder with no
project file and nothing exported, no process starts at all. Where the working folder goes
through a symbolic link, bash runs one `pwd -P` (a fork) per change of folder and keeps the
answer while `.` is that folder (`-ef`: the same inode); zsh (`:A`) and fish (`builtin pwd
-P`) resolve it in the shell. All three resolve the path `$PWD` names, which is not where
the shell is once a link on it was re-pointed (a deploy's `current`) or a folder moved:
`. -ef` catches that, and getcwd (`pwd -P` in a fork) answers in that rare case.

Every `cd` within one project, or between folders without one, costs a few `stat` calls
(`python bench/startup.py` prints it). The shell-side names are `_KEYVAULT_*`; the exported
ones (`KEYVAULT_HOOK_PROJECT`, `KEYVAULT_HOOK_SAVED`) belong to vault/export/hook.py.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final


SOCKET_VARIABLE: Final = "_KEYVAULT_SOCKET"  # set by `hook-env`, read by the scripts below
VAULT_VARIABLE: Final = "_KEYVAULT_VAULT"  # the vault.age whose header the scripts watch
CONFIG_VARIABLE: Final = "_KEYVAULT_CONFIG"  # and the config.toml (default_base_url)

_BASH: Final = r"""_keyvault_find() {
  local dir=$PWD probe=$PWD text=
  if [[ -n ${_KEYVAULT_PHYSICAL-} && . -ef $_KEYVAULT_PHYSICAL ]]; then
    dir=$_KEYVAULT_PHYSICAL  # still the same folder (-ef: same inode, no process)
  else
    while [[ -n $probe ]]; do
      if [[ -L $probe ]]; then dir=$(builtin pwd -P 2>/dev/null); break; fi
      probe=${probe%/*}
    done
    # a folder moved or a link re-pointed since the `cd`: $PWD names another folder now,
    # and bash's own pwd -P resolves $PWD too; the pwd program asks getcwd (rare)
    [[ . -ef $dir ]] || dir=$(exec pwd -P 2>/dev/null)
    _KEYVAULT_PHYSICAL=$dir
  fi
  [[ $dir == / ]] && dir=
  _KEYVAULT_FOUND=
  while :; do
    if [[ -f $dir/.keyvault.toml ]]; then
      _KEYVAULT_FOUND=$dir/.keyvault.toml
      if [[ -O $_KEYVAULT_FOUND ]]; then
        IFS= read -r -N 4096 text 2>/dev/null <"$_KEYVAULT_FOUND" || :  # EOF is not an error
        _KEYVAULT_FOUND+=$'\n'$text
      fi
      return 0
    fi
    [[ -z $dir ]] && return 0
    dir=${dir%/*}
  done
}
_keyvault_state() {
  local head= config=
  if [[ -n ${_KEYVAULT_VAULT-} ]]; then
    IFS= read -r -N 96 head 2>/dev/null <"$_KEYVAULT_VAULT" || :
    IFS= read -r -N 4096 config 2>/dev/null <"${_KEYVAULT_CONFIG-}" || :
  fi
  _KEYVAULT_NOW="${_KEYVAULT_FOUND-}|${KEYVAULT_HOME-}|${KEYVAULT_HOOK_PROJECT-}|"
  _KEYVAULT_NOW+="$head|$config|"
  if [[ -n ${_KEYVAULT_SOCKET-} && -S $_KEYVAULT_SOCKET ]]; then _KEYVAULT_NOW+=1; fi
}
_keyvault_hook() {
  local rc=$?
  _keyvault_find
  if [[ -n ${_KEYVAULT_FOUND-} || -n ${KEYVAULT_HOOK_PROJECT-} ]]; then
    _keyvault_state
    if [[ $_KEYVAULT_NOW != "${_KEYVAULT_STATE-}" ]]; then
      eval "$(command keyvault hook-env --shell bash)"
      _keyvault_state
      _KEYVAULT_STATE=$_KEYVAULT_NOW
    fi
  fi
  return $rc
}
case ";${PROMPT_COMMAND-};" in
  *";_keyvault_hook;"*) ;;
  *) PROMPT_COMMAND="_keyvault_hook${PROMPT_COMMAND:+;$PROMPT_COMMAND}" ;;
esac
"""

_ZSH: Final = r"""_keyvault_find() {
  emulate -L zsh
  local dir=${PWD:A} text=
  # :A resolves what $PWD names now; after a link was re-pointed or a folder moved that is
  # not where the shell is, and only getcwd (pwd -P, a fork in that rare case) knows
  [[ . -ef $dir ]] || dir=$(builtin pwd -P 2>/dev/null)
  [[ $dir == / ]] && dir=
  typeset -g _KEYVAULT_FOUND=
  while :; do
    if [[ -f $dir/.keyvault.toml ]]; then
      _KEYVAULT_FOUND=$dir/.keyvault.toml
      if [[ -O $_KEYVAULT_FOUND ]]; then
        read -r -u 0 -k 4096 text 2>/dev/null <$_KEYVAULT_FOUND || :
        _KEYVAULT_FOUND+=$'\n'$text
      fi
      return 0
    fi
    [[ -z $dir ]] && return 0
    dir=${dir%/*}
  done
}
_keyvault_state() {
  emulate -L zsh
  local head= config=
  # zsh reports a missing file even under 2>/dev/null: test first
  if [[ -f ${_KEYVAULT_VAULT-} ]]; then
    read -r -u 0 -k 96 head 2>/dev/null <$_KEYVAULT_VAULT || :
  fi
  if [[ -f ${_KEYVAULT_CONFIG-} ]]; then
    read -r -u 0 -k 4096 config 2>/dev/null <$_KEYVAULT_CONFIG || :
  fi
  typeset -g _KEYVAULT_NOW="${_KEYVAULT_FOUND-}|${KEYVAULT_HOME-}|${KEYVAULT_HOOK_PROJECT-}|"
  _KEYVAULT_NOW+="$head|$config|"
  if [[ -n ${_KEYVAULT_SOCKET-} && -S $_KEYVAULT_SOCKET ]]; then _KEYVAULT_NOW+=1; fi
}
_keyvault_hook() {
  _keyvault_find
  if [[ -n ${_KEYVAULT_FOUND-} || -n ${KEYVAULT_HOOK_PROJECT-} ]]; then
    _keyvault_state
    if [[ $_KEYVAULT_NOW != "${_KEYVAULT_STATE-}" ]]; then
      eval "$(command keyvault hook-env --shell zsh)"
      _keyvault_state
      typeset -g _KEYVAULT_STATE=$_KEYVAULT_NOW
    fi
  fi
}
() {
  # the user's options (ksh_arrays with nounset) must not break loading it in .zshrc
  emulate -L zsh
  typeset -ag precmd_functions
  # hook-env assigns these in _keyvault_hook: declared here, warn_create_global stays quiet
  typeset -g _KEYVAULT_SOCKET _KEYVAULT_VAULT _KEYVAULT_CONFIG
  if (( ! ${precmd_functions[(I)_keyvault_hook]} )); then
    precmd_functions=(_keyvault_hook $precmd_functions)
  fi
}
"""

_FISH: Final = r"""function _keyvault_find
    # `string collect`: a command substitution splits at line breaks, which a name may hold
    set -l dir (builtin pwd -P 2>/dev/null | string collect)
    # fish's pwd -P resolves what $PWD names now; after a link was re-pointed or a folder
    # moved that is not where the shell is, and only getcwd (/bin/pwd, rare) knows
    test . -ef "$dir"; or set dir (command pwd -P 2>/dev/null | string collect)
    test "$dir" = / && set dir ''
    set -g _KEYVAULT_FOUND ''
    while true
        if test -f "$dir/.keyvault.toml"
            set _KEYVAULT_FOUND "$dir/.keyvault.toml"
            if test -O "$_KEYVAULT_FOUND"
                set -l text ''
                read -z -n 4096 text 2>/dev/null <"$_KEYVAULT_FOUND"; or true
                set _KEYVAULT_FOUND "$_KEYVAULT_FOUND"\n"$text"
            end
            return 0
        end
        test -z "$dir" && return 0
        set dir (string replace -r '/[^/]*$' '' -- "$dir" | string collect)
    end
end
function _keyvault_state
    set -l head ''
    set -l config ''
    if test -n "$_KEYVAULT_VAULT" && test -f "$_KEYVAULT_VAULT"
        read -z -n 96 head 2>/dev/null <"$_KEYVAULT_VAULT"; or true
    end
    if test -n "$_KEYVAULT_CONFIG" && test -f "$_KEYVAULT_CONFIG"
        read -z -n 4096 config 2>/dev/null <"$_KEYVAULT_CONFIG"; or true
    end
    set -g _KEYVAULT_NOW "$_KEYVAULT_FOUND|$KEYVAULT_HOME|$KEYVAULT_HOOK_PROJECT|$head|$config|"
    if test -n "$_KEYVAULT_SOCKET" && test -S "$_KEYVAULT_SOCKET"
        set _KEYVAULT_NOW "$_KEYVAULT_NOW"1
    end
end
function _keyvault_hook --on-variable PWD --on-event fish_prompt
    _keyvault_find
    if test -n "$_KEYVAULT_FOUND" || test -n "$KEYVAULT_HOOK_PROJECT"
        _keyvault_state
        if test "$_KEYVAULT_NOW" != "$_KEYVAULT_STATE"
            command keyvault hook-env --shell fish | source
            _keyvault_state
            set -g _KEYVAULT_STATE "$_KEYVAULT_NOW"
        end
    end
end
_keyvault_hook
"""

HOOK_SCRIPTS: Final = {"bash": _BASH, "zsh": _ZSH, "fish": _FISH}
