// A cPTP peer written the way the course's Node.js peers are, for the interop tests.
// Server: Welcome or Redirect by the table in the folder name ID-SIZE. Client (-p): one
// join from an ephemeral port, reply decoded and printed; no auto-join, like many
// students' versions. QUIRK=newline appends "\n" after every message it sends.
'use strict';
const net = require('net');
const path = require('path');

const folder = path.basename(process.cwd());
const dash = folder.lastIndexOf('-');
const peerID = folder.slice(0, dash);
const tableSize = Number(folder.slice(dash + 1));
const table = []; // {address, port}

function encode(type, peers) {
  const id = Buffer.from(peerID, 'ascii');
  const buf = Buffer.alloc(4 + id.length + 6 * peers.length);
  const word = ((7 << 29) | (type << 21) | (peers.length << 8) | id.length) >>> 0;
  buf.writeUInt32BE(word, 0);
  id.copy(buf, 4);
  peers.forEach((p, i) => {
    const at = 4 + id.length + 6 * i;
    p.address.split('.').forEach((octet, j) => buf.writeUInt8(Number(octet), at + j));
    buf.writeUInt16BE(p.port, at + 4);
  });
  return process.env.QUIRK === 'newline' ? Buffer.concat([buf, Buffer.from('\n')]) : buf;
}

function decode(buf) {
  const word = buf.readUInt32BE(0);
  const version = word >>> 29;
  const type = (word >>> 21) & 0xff;
  const count = (word >>> 8) & 0x1fff;
  const idLen = word & 0xff;
  const id = buf.slice(4, 4 + idLen).toString('ascii');
  const peers = [];
  for (let i = 0; i < count; i++) {
    const at = 4 + idLen + 6 * i;
    peers.push(`${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}:${buf.readUInt16BE(at + 4)}`);
  }
  return { version, type, id, peers, length: 4 + idLen + 6 * count };
}

const server = net.createServer((sock) => {
  const who = { address: sock.remoteAddress.replace(/^::ffff:/, ''), port: sock.remotePort };
  if (table.length >= tableSize) {
    console.log(`Peer table full: ${who.address}:${who.port} redirected`);
    sock.end(encode(2, table));
    return;
  }
  sock.write(encode(1, table.slice()));
  table.push(who);
  console.log(`Connected from peer ${who.address}:${who.port}`);
  sock.on('error', () => {});
  sock.on('close', () => {
    const i = table.indexOf(who);
    if (i >= 0) table.splice(i, 1);
    console.log(`Peer ${who.address}:${who.port} left`);
  });
});

server.listen(0, '127.0.0.1', () => {
  console.log(`This peer address is 127.0.0.1:${server.address().port} located at ${peerID}`);
  const p = process.argv.indexOf('-p');
  if (p < 0) return;
  const [host, port] = process.argv[p + 1].split(':');
  let got = Buffer.alloc(0);
  const client = net.connect(Number(port), host);
  client.on('data', (chunk) => {
    got = Buffer.concat([got, chunk]);
    if (got.length < 4) return;
    const msg = decode(got);
    if (got.length < msg.length) return;
    if (msg.version !== 7) { console.log(`bad version ${msg.version}`); return; }
    if (msg.type === 1) console.log(`Connected to peer ${msg.id}:${port} at timestamp: 1`);
    console.log(`Received ack from ${msg.id}:${port}`);
    if (msg.peers.length > 0) console.log(`  which is peered with: ${msg.peers.map((x) => `[${x}]`).join(', ')}`);
    if (msg.type === 2) client.end();
    got = Buffer.alloc(0);
  });
  client.on('error', (e) => console.log(`join failed: ${e.message}`));
});
