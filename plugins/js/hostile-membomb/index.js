// Hostile: allocates until the memory cap stops it, unless {"ok": true}.
export function run(input, ctx) {
  if (input && input.ok) return { ok: true };
  const hoard = [];
  for (;;) hoard.push(new Uint8Array(8 << 20).fill(1));
}
