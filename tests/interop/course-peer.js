// A cPTP peer written the way the course's Node.js peers are, for the interop tests.
// Server: Welcome or Redirect by the table in the folder name ID-SIZE. Client (-p): one
// join from an ephemeral port, reply decoded and printed; no auto-join, like many
// students' versions. QUIRK=newline appends "\n" after every message it sends.
// MODE=full instead follows docs/PROTOCOL.md (see runFull below), with faults to switch on.
'use strict';
const net = require('net');
const path = require('path');

// FOLDER_FROM=script reads the folder name from the script's location instead, as some
// students' peers do (`cptp check --copy` makes both the course-style folder).
const folder = path.basename(process.env.FOLDER_FROM === 'script' ? __dirname : process.cwd());
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

function runCourse() {
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
}

// MODE=full: a peer that follows docs/PROTOCOL.md as far as Node.js can (it cannot join
// from its listening port, PROTOCOL 6.1), for the tests of `cptp check`. BREAK lists
// comma-separated faults, each breaking one rule of the checker:
//   padding       4 zero bytes after every message          (4.2-exact-length, WARN)
//   junk-tail     "xyz" after every message                 (4.2-exact-length)
//   close-welcome closes the link right after the Welcome   (5.1-link-stays-open)
//   never-free    a departed peer keeps its slot            (5.4-slot-freed, 5.4-departed-not-listed)
//   stale-list    a departed peer's slot is freed, but it stays listed (5.4-departed-not-listed)
//   redirect-open the Redirect's connection is never closed (5.2-redirect-closed)
//   overfill      decides, then admits 30 ms later          (5.3-concurrent-joins)
//   endless       the auto-join retries refusing peers forever (6.3-redirect-loop-ends, 6.4-gives-up)
//   self-join     does not skip its own address in the auto-join (6.3-no-self-join)
//   crash-on-bad  throws on a reply with a bad version      (4.5-reply-bad-version)
//   colon         prints 'Connected from peer: IP:PORT'     (5.1-connected-line, WARN)
//   crash-on-reset no care for connections reset at once    (4.5-survives-reset)
//   folder-name   prints the folder name where the ID belongs (7.1-address-line, 2.2-id-from-folder, WARN)
//   debug         prints a debug line before each 'Connected from peer' (FAILs only under --strict)
//   late-listen   with -p, listens (and prints its address) only after its join, as the
//                 course's sample does (6.1-join-from-listening-port, 6.3-no-self-join)
function runFull() {
  const faults = new Set((process.env.BREAK || '').split(',').filter((f) => f));
  const has = (f) => faults.has(f);
  let timer = 1 + Math.floor(Math.random() * 999);
  setInterval(() => { timer = (timer + 1) >>> 0; }, 10);
  const slots = []; // entries holding a slot
  const listed = []; // entries listed in replies (differs from slots only under stale-list)

  function send(sock, type, peers) {
    let buf = encode(type, peers);
    if (has('padding')) buf = Buffer.concat([buf, Buffer.alloc(4)]);
    if (has('junk-tail')) buf = Buffer.concat([buf, Buffer.from('xyz')]);
    sock.write(buf);
  }

  const server = net.createServer((sock) => {
    if (!has('crash-on-reset')) {
      sock.on('error', () => {});
      // A connection reset before it was accepted has no address any more.
      if (!sock.remoteAddress) { sock.destroy(); return; }
    }
    const who = { address: sock.remoteAddress.replace(/^::ffff:/, ''), port: sock.remotePort };
    const admit = () => {
      send(sock, 1, listed.slice());
      slots.push(who);
      listed.push(who);
      if (has('debug')) console.log(`debug: accepted ${JSON.stringify(who)}`);
      console.log(has('colon') ? `Connected from peer: ${who.address}:${who.port}` : `Connected from peer ${who.address}:${who.port}`);
      if (has('close-welcome')) sock.end();
      sock.on('close', () => {
        console.log(`Peer ${who.address}:${who.port} left`);
        if (has('never-free')) return;
        const i = slots.indexOf(who);
        if (i >= 0) slots.splice(i, 1);
        if (has('stale-list')) return;
        const j = listed.indexOf(who);
        if (j >= 0) listed.splice(j, 1);
      });
    };
    if (slots.length >= tableSize) {
      console.log(`Peer table full: ${who.address}:${who.port} redirected`);
      send(sock, 2, listed.slice());
      if (!has('redirect-open')) sock.end();
      return;
    }
    if (has('overfill')) setTimeout(admit, 30); else admit();
  });

  const listen = (then) => server.listen(0, '127.0.0.1', () => {
    const me = `127.0.0.1:${server.address().port}`;
    console.log(`This peer address is ${me} located at ${has('folder-name') ? folder : peerID}`);
    then(me);
  });
  const p = process.argv.indexOf('-p');
  if (p < 0) listen(() => {});
  else if (has('late-listen')) joinFrom(null, () => listen(() => {}));
  else listen((me) => joinFrom(me, () => {}));

  // Joins the -p peer, auto-joining on Redirects; calls `finished` once it is linked or
  // has given up.
  function joinFrom(me, finished) {
    const first = process.argv[p + 1];
    const tried = new Set();
    const queue = [first];
    const next = () => {
      while (queue.length > 0) {
        const target = queue.shift();
        if (target === me && !has('self-join')) continue;
        if (tried.has(target) && !has('endless')) continue;
        tried.add(target);
        if (has('endless')) setTimeout(() => attempt(target), 100); else attempt(target);
        return;
      }
      if (has('endless')) { queue.push(first); setTimeout(next, 100); return; }
      console.log('No peer accepted the join; running standalone');
      finished();
    };
    const attempt = (target) => {
      const [host, port] = target.split(':');
      let got = Buffer.alloc(0);
      let done = false;
      const fail = (why) => {
        if (done) return;
        done = true;
        console.error(`${target}: ${why}`);
        client.destroy();
        next();
      };
      const client = net.connect(Number(port), host);
      client.setTimeout(5000, () => fail('sent no reply within 5 s'));
      client.on('error', (e) => fail(e.message));
      client.on('close', () => fail('closed the link without a whole reply'));
      client.on('data', (chunk) => {
        if (done) return;
        got = Buffer.concat([got, chunk]);
        if (got.length < 4) return;
        const word = got.readUInt32BE(0);
        const version = word >>> 29;
        const type = (word >>> 21) & 0xff;
        if (version !== 7) {
          if (has('crash-on-bad')) throw new Error(`bad version ${version}`);
          fail(`wrong protocol version ${version}`);
          return;
        }
        if (type !== 1 && type !== 2) { fail(`unknown message type ${type}`); return; }
        const length = 4 + (word & 0xff) + 6 * ((word >>> 8) & 0x1fff);
        if (got.length < length) return;
        const msg = decode(got.slice(0, length));
        done = true;
        client.setTimeout(0);
        const list = msg.peers.map((x) => `[${x}]`).join(', ');
        let text = '';
        if (type === 1) text += `Connected to peer ${msg.id}:${port} at timestamp: ${timer}\n`;
        text += `Received ack from ${msg.id}:${port}\n`;
        if (msg.peers.length > 0) text += `  which is peered with: ${list}\n`;
        if (type === 2) {
          text += '\nThe join has been declined; the auto-join process is performing ...\n';
          process.stdout.write(text + '\n');
          client.destroy();
          queue.unshift(...msg.peers);
          next();
          return;
        }
        process.stdout.write(text);
        finished();
        const entry = { address: host, port: Number(port) };
        slots.push(entry);
        listed.push(entry);
        client.removeAllListeners('close');
        client.on('close', () => {
          const i = slots.indexOf(entry);
          if (i >= 0) slots.splice(i, 1);
          const j = listed.indexOf(entry);
          if (j >= 0) listed.splice(j, 1);
        });
      });
    };
    next();
  }
}

if (process.env.MODE === 'full') runFull(); else runCourse();
