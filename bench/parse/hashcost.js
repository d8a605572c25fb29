// The CPU cost of one password verify in Parse Server 9.10 (bcrypt, cost 10, @node-rs/bcrypt),
// median of 15: bench/compare/hashcost.py compares it with MindHarbor's argon2id.

const bcrypt = require('@node-rs/bcrypt');
const hash = bcrypt.hashSync('bench-harbor-passphrase', 10);
for (let i = 0; i < 3; i++) bcrypt.verifySync('bench-harbor-passphrase', hash);
const cpu = [];
for (let i = 0; i < 15; i++) { const s = process.cpuUsage(); bcrypt.verifySync('bench-harbor-passphrase', hash); const d = process.cpuUsage(s); cpu.push((d.user + d.system) / 1e6); }
cpu.sort((a, b) => a - b);
console.log(JSON.stringify({ cpu_seconds: cpu[7], cost: 10 }));
