#!/usr/bin/env bash
# `shimmy run` driven through a real terminal (tmux send-keys / capture-pane) with the demo
# model: a two-turn conversation whose second turn reuses the first's KV (--verbose reports the
# reused tokens), /set, /show, /system, /save and /load, a multi-line message, Ctrl-C in the
# middle of an answer (the chat goes on), Ctrl-C on the prompt, Ctrl-D to leave; then piped
# mode (one answer, no prompt printed) and a greedy answer that matches `shimmy generate` over
# the same rendered prompt. --ignore-eos keeps every answer going to its -n, so the long one is
# still running when Ctrl-C comes (6,000 tokens in a context of 8,192: about 10 s at the demo
# model's 1,500 tokens/s and the longer attention; 1,000 tokens in its own 1,024 took 0.7 s).
set -u
BIN=${SHIMMY_BIN:?SHIMMY_BIN must point to the shimmy binary}
SRC=${SHIMMY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
MODEL=$SRC/models/docs-llama-30m-Q4_K_M.gguf
[ -f "$MODEL" ] || { echo "skip: $MODEL is absent"; exit 77; }
command -v tmux >/dev/null || { echo "skip: tmux is not installed (scripts/deps.sh --test)"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/shimmy-run.XXXXXX")
SOCK="$T/tmux.sock"
tm() { tmux -S "$SOCK" "$@"; }
cleanup() { tm kill-server 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail=0
check() { if ! "$@"; then echo "FAILED: $*"; fail=1; fi; }
pane() { tm capture-pane -p -J -S -200 -t run; }
# waits until the pane matches (grep -E) at least $2 times (default 1); 20 s at most
wait_for() {
    local want=${2:-1}
    for _ in $(seq 200); do
        [ "$(pane | grep -cE -- "$1")" -ge "$want" ] && return 0
        sleep 0.1
    done
    echo "timed out waiting for '$1' x$want; the pane:"
    pane
    return 1
}
export HOME="$T/home" XDG_STATE_HOME="$T/state"
mkdir -p "$HOME"

cat > "$T/session.sh" <<EOF
"$BIN" run "$MODEL" --seed 7 -n 24 --verbose --threads 2 --ignore-eos --ctx-size 8192
echo EXIT=\$? > "$T/exit"
sleep 30
EOF
tm new-session -d -s run -x 160 -y 50 "bash '$T/session.sh'"
check wait_for 'Chatting with'

# turn 1, then /set, turn 2: the second prompt starts with the first turn, so its KV is reused
tm send-keys -t run 'What does git switch do?' Enter
check wait_for 'answer: [0-9]+ tokens' 1
tm send-keys -t run '/set temperature 0.5' Enter
check wait_for 'Set temperature to 0.5'
tm send-keys -t run '/set top_k -3' Enter
check wait_for 'top_k must be a whole number in'
tm send-keys -t run 'And git restore?' Enter
check wait_for 'answer: [0-9]+ tokens' 2
# the second turn's prompt reused more than the first turn's prompt had (its answer too)
reused=$(pane | sed -nE 's/.*prompt: ([0-9]+) tokens \(([0-9]+) reused.*/\1 \2/p')
first_prompt=$(echo "$reused" | sed -n 1p | cut -d' ' -f1)
second_reused=$(echo "$reused" | sed -n 2p | cut -d' ' -f2)
check test "$(echo "$reused" | sed -n 1p | cut -d' ' -f2)" = 0
check test "${second_reused:-0}" -gt "${first_prompt:-999}"
tm send-keys -t run '/show' Enter
check wait_for '"temperature":0.5'
check wait_for 'conversation: 4 messages'

# /save, /clear, /load
tm send-keys -t run "/save $T/chat.json" Enter
check wait_for 'Saved the conversation'
check python3 -c "
import json,sys; d=json.load(open('$T/chat.json'))
r=[m['role'] for m in d['messages']]
sys.exit(0 if r==['user','assistant','user','assistant'] and d['messages'][0]['content']=='What does git switch do?' and abs(d['options']['temperature']-0.5)<1e-6 else 1)"
tm send-keys -t run '/clear' Enter
check wait_for 'Cleared the conversation'
tm send-keys -t run '/show' Enter
check wait_for 'conversation: 0 messages'
tm send-keys -t run "/load $T/chat.json" Enter
check wait_for 'Loaded 4 messages'
tm send-keys -t run '/system You answer in one sentence.' Enter
check wait_for 'Set the system prompt'

# a multi-line message between """ marks: one turn
tm send-keys -t run '"""' Enter 'first line' Enter 'second line"""' Enter
check wait_for 'answer: [0-9]+ tokens' 3

# Ctrl-C in the middle of a long answer stops it, and the chat goes on
tm send-keys -t run '/set num_predict 6000' Enter
check wait_for 'Set num_predict to 6000'
tm send-keys -t run '/clear' Enter
tm send-keys -t run 'Write a long essay about PostgreSQL.' Enter
sleep 1.5
tm send-keys -t run C-c
check wait_for '\(stopped\)'
check wait_for 'answer: [0-9]+ tokens' 4
stopped_n=$(pane | sed -nE 's/.*answer: ([0-9]+) tokens.*/\1/p' | tail -n1)
check test "${stopped_n:-6000}" -lt 6000
# Ctrl-C on an empty prompt: a hint, not an exit
tm send-keys -t run C-c
check wait_for 'Ctrl-D or /bye to leave\)'
tm send-keys -t run '/nonsense' Enter
check wait_for "Unknown command '/nonsense'"
tm send-keys -t run '/set num_predict 8' Enter
tm send-keys -t run 'One more question?' Enter
check wait_for 'answer: [0-9]+ tokens' 5
# Ctrl-D leaves with status 0
tm send-keys -t run C-d
for _ in $(seq 100); do [ -s "$T/exit" ] && break; sleep 0.1; done
check grep -q 'EXIT=0' "$T/exit"
check test -s "$T/state/shimmy/history"

# piped: one answer, no prompt or banner on stdout, exit 0
echo "What does git switch do?" | "$BIN" run "$MODEL" --temp 0 -n 20 > "$T/piped" 2> "$T/piped.err"
check test $? -eq 0
check test -s "$T/piped"
check test "$(grep -c '>>>\|Chatting' "$T/piped")" = 0
# greedy: the same text `generate` gives for the prompt the template renders
"$BIN" template "$MODEL" --messages '[{"role":"user","content":"What does git switch do?"}]' \
    --trim-bos-eos > "$T/prompt" 2>/dev/null
if [ -s "$T/prompt" ]; then
    "$BIN" generate "$MODEL" --prompt "$(cat "$T/prompt")" --temp 0 -n 20 > "$T/gen" 2>/dev/null
    check test "$(tr -d '\n' < "$T/piped")" = "$(tr -d '\n' < "$T/gen")"
fi
# empty input is a usage error, an unknown model a clear one
echo "" | "$BIN" run "$MODEL" > /dev/null 2> "$T/err"
check test $? -eq 2
echo "hi" | "$BIN" run no-such-model > /dev/null 2> "$T/err"
check test $? -eq 1
check grep -q "no model file or registry name 'no-such-model'" "$T/err"

exit $fail
