// Hostile: loops forever unless {"ok": true}.
export function run(input, ctx) {
  if (input && input.ok) return { ok: true };
  let n = 0;
  for (;;) n++;
}
