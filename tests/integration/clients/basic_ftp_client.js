// An FTPS client on the npm package basic-ftp (Node's tls), driven by
// tests/integration/test_real_clients.py. basic-ftp is found through NODE_PATH.
//
//   node basic_ftp_client.js PORT CAFILE USER PASSWORD SECURE REMOTE_DIR \
//        GET_REMOTE GET_LOCAL PUT_LOCAL PUT_REMOTE
//
// SECURE is "explicit" (AUTH TLS, secure: true) or "implicit". Lists
// REMOTE_DIR, downloads GET_REMOTE, uploads PUT_LOCAL, lists again; prints
// one JSON line per step and exits 1 on the first error.
"use strict";
const fs = require("fs");
const tls = require("tls");
const ftp = require("basic-ftp");

const [port, cafile, user, password, secure, dir, getRemote, getLocal, putLocal, putRemote] =
    process.argv.slice(2);

async function main() {
    const client = new ftp.Client(10000);
    const log = [];
    client.ftp.log = (line) => log.push(line);
    client.ftp.verbose = true;
    try {
        await client.access({
            host: "127.0.0.1",
            port: Number(port),
            user,
            password,
            secure: secure === "implicit" ? "implicit" : true,
            secureOptions: {ca: [fs.readFileSync(cafile)]},
        });
        const controlProtocol = client.ftp.socket instanceof tls.TLSSocket
            ? client.ftp.socket.getProtocol() : null;
        console.log(JSON.stringify({step: "connect", node: process.version, protocol: controlProtocol}));
        const before = await client.list(dir);
        console.log(JSON.stringify({step: "list", names: before.map((f) => [f.name, f.size])}));
        await client.downloadTo(getLocal, getRemote);
        console.log(JSON.stringify({step: "download"}));
        await client.uploadFrom(putLocal, putRemote);
        console.log(JSON.stringify({step: "upload"}));
        const after = await client.list(dir);
        console.log(JSON.stringify({step: "list", names: after.map((f) => [f.name, f.size])}));
    } catch (err) {
        console.error("FAILED: " + (err && err.stack ? err.stack : err));
        console.error("conversation:\n" + log.join("\n"));
        process.exitCode = 1;
    } finally {
        client.close();
    }
    // Whether each data connection resumed is in the verbose log
    // ("Downloading from ... (TLSv1.3)"); print the conversation for the test log.
    console.log(JSON.stringify({step: "log", lines: log}));
}

main();
