// Hostile: reads the path the input names (e.g. /etc/passwd, /data/in/../../etc/passwd).
export function run(input, ctx) {
  if (input.ok) return { ok: true };
  return { stolen: ctx.readText(input.path).slice(0, 200) };
}
