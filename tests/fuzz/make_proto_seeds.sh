#!/usr/bin/env bash
# Writes tests/fuzz/seeds/proto/: one valid Envelope of every kind, encoded
# from protobuf text format by protoc (an encoder independent of protobuf-c;
# Debian package protobuf-compiler, needed only to remake the seeds).
set -eu
cd "$(dirname "$0")/../.."
out=tests/fuzz/seeds/proto
mkdir -p "$out"
enc() { printf '%s\n' "$2" | protoc --encode=tandem.Envelope proto/tandem.proto > "$out/$1"; }
fp='fingerprint { tokenizer_hash: 81985529216486895 vocab: 512 bos: 1 eos: 2 }'
enc hello   "version: 1 hello { version: 1 $fp client: \"seed\" }"
enc welcome "version: 1 welcome { accepted: true $fp max_context: 256 max_gamma: 8 exit_layers: [1] }"
enc refused "version: 1 welcome { accepted: false reason: \"tokenizers differ\" }"
enc open    "version: 1 open { prompt: [1, 20, 30] sampling { temperature: 0.8 top_k: 5 top_p: 0.9 seed: 7 } max_tokens: 32 mode: MODE_SD_EE }"
enc draft   "version: 1 draft { round: 4 start: 12 tokens: [5, 6, 7, 8] }"
enc draft_q "version: 1 draft { round: 5 start: 12 tokens: [5, 9] dists { ids: [5, 6] probs: [0.75, 0.25] } dists { ids: [9] probs: [1] } }"
enc early   "version: 1 early { round: 4 exit_layer: 1 accepted: 2 next_token: 40 confidence: 0.93 }"
enc final   "version: 1 final { round: 4 accepted: 3 next_token: 41 timings { queue_ms: 0.1 verify_ms: 5 early_ms: 2 } }"
enc tokens  "version: 1 tokens { tokens: [1, 2, 3] done: true busy_ms: 3 }"
enc close   "version: 1 close { }"
enc error   "version: 1 error { code: ERROR_IDLE text: \"idle for 60 s\" round: 3 }"
enc ping    "version: 1 ping { nonce: 9 sent_us: 123456 }"
enc pong    "version: 1 pong { nonce: 9 sent_us: 123456 }"
enc badver  "version: 2 ping { nonce: 1 }"
