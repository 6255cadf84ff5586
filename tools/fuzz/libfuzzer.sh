#!/bin/sh
# Builds the libFuzzer binary of the vCPU fuzz harness (clang, ASan + UBSan + coverage) into
# build/fuzz/ and runs it on a corpus seeded with the regression inputs and the sample guests'
# code. Extra arguments go to libFuzzer, e.g. `-max_total_time=1200 -jobs=2`.
# Needs clang and its runtime: apt-get install -y clang libclang-rt-14-dev
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/build/fuzz"
mkdir -p "$out/corpus" "$out/crashes"
srcs=$(grep -v '^#' "$root/native/sources.txt" | grep -v addon.cc | grep . | sed "s|^|$root/|")
clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -I "$root/native" -o "$out/vcpu_fuzzer" \
  "$root/tools/fuzz/libfuzzer.cc" "$root/tools/fuzz/harness.cc" $srcs
cp "$root"/tools/fuzz/regress/*.bin "$out/corpus/" 2>/dev/null || true
# Seeds from the sample guests: a header (EPT on, IDT, 1000-instruction budget), no patches,
# then the guest's loaded image as the code.
for elf in "$root"/build/guests/*.elf; do
  [ -f "$elf" ] || continue
  seed="$out/corpus/guest-$(basename "$elf" .elf).bin"
  printf '\041\000\000\000\350\003\200\000\000\000\000\000\000\000\000\000\000' > "$seed"
  objcopy -O binary "$elf" "$seed.img" && head -c 8192 "$seed.img" >> "$seed"
  rm -f "$seed.img"
done
cd "$out"
exec ./vcpu_fuzzer -artifact_prefix="$out/crashes/" -max_len=9000 -timeout=10 -rss_limit_mb=4096 "$@" \
  corpus
