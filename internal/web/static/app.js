// AITBC pages: the only script. It follows the explorer's live feed, a
// job's token stream, and checks a receipt in the browser. Everything it
// shows is set with textContent: text from the chain is never markup.
"use strict";

(function () {
  function el(tag, text, attrs) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function link(href, text, title) {
    var a = el("a", text, { href: href });
    if (title) a.title = title;
    return a;
  }
  function short(s) { s = String(s || ""); return s.length <= 20 ? s : s.slice(0, 10) + "\u2026" + s.slice(-6); }
  function cell(child) { var td = el("td"); if (typeof child === "string") td.textContent = child; else td.appendChild(child); return td; }
  function when(iso) {
    var d = new Date(iso);
    if (isNaN(d)) return "\u2014";
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC").replace(/Z$/, " UTC");
  }

  // ---- live explorer
  function prepend(tbody, tr, keep) {
    var empty = tbody.querySelector("tr.empty");
    if (empty) empty.remove();
    tr.className = "fresh";
    tbody.insertBefore(tr, tbody.firstChild);
    while (tbody.rows.length > keep) tbody.deleteRow(tbody.rows.length - 1);
  }
  function startLive() {
    var blocks = document.getElementById("live-blocks");
    if (!blocks || !window.EventSource) return;
    var txs = document.getElementById("live-txs");
    var status = document.getElementById("live-status");
    var height = document.getElementById("stat-height");
    var es = new EventSource(blocks.getAttribute("data-live"));
    es.addEventListener("hello", function () { if (status) status.textContent = "Live: new blocks and transactions appear as they are committed."; });
    es.addEventListener("block", function (ev) {
      var b = JSON.parse(ev.data);
      var tr = el("tr", null, { "data-height": b.height });
      tr.appendChild(cell(link("/explorer/block/" + b.height, b.height)));
      tr.appendChild(cell(when(b.time)));
      tr.appendChild(cell(String(b.num_txs)));
      prepend(blocks, tr, 20);
      if (height) height.textContent = b.height;
    });
    es.addEventListener("tx", function (ev) {
      if (!txs) return;
      var t = JSON.parse(ev.data);
      var tr = el("tr", null, { "data-tx": t.tx_hash });
      var a = link("/explorer/tx/" + t.tx_hash, short(t.tx_hash), t.tx_hash);
      a.className = "mono";
      tr.appendChild(cell(a));
      tr.appendChild(cell(t.type));
      tr.appendChild(cell(link("/explorer/block/" + t.height, t.height)));
      tr.appendChild(cell(t.amount || "\u2014"));
      prepend(txs, tr, 20);
    });
    es.onerror = function () { if (status) status.textContent = "Live updates paused; reconnecting\u2026"; };
  }

  // ---- bytes, hashes, CBOR
  function hexToBytes(h) {
    h = String(h || "").replace(/^0x/, "");
    if (h.length % 2 || /[^0-9a-fA-F]/.test(h)) throw new Error("not hex");
    var out = new Uint8Array(h.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(h.substr(i * 2, 2), 16);
    return out;
  }
  function toHex(b) { return Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join(""); }
  function b64ToBytes(s) { var bin = atob(s); var out = new Uint8Array(bin.length); for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i); return out; }
  function concat(a, b) { var out = new Uint8Array(a.length + b.length); out.set(a, 0); out.set(b, a.length); return out; }
  function sha256(bytes) { return crypto.subtle.digest("SHA-256", bytes).then(function (d) { return new Uint8Array(d); }); }
  function equal(a, b) { if (a.length !== b.length) return false; for (var i = 0; i < a.length; i++) if (a[i] !== b[i]) return false; return true; }

  // readItem reads one CBOR item of the kinds a receipt uses (unsigned and
  // negative integers, byte and text strings) at off; it returns the value
  // and the offset after it.
  function readHead(b, off) {
    var ib = b[off], major = ib >> 5, ai = ib & 31, n = 0, p = off + 1;
    if (ai < 24) n = ai;
    else if (ai === 24) { n = b[p]; p += 1; }
    else if (ai === 25) { n = (b[p] << 8) | b[p + 1]; p += 2; }
    else if (ai === 26) { n = ((b[p] << 24) >>> 0) + (b[p + 1] << 16) + (b[p + 2] << 8) + b[p + 3]; p += 4; }
    else if (ai === 27) { n = 0; for (var i = 0; i < 8; i++) n = n * 256 + b[p + i]; p += 8; }
    else throw new Error("unsupported CBOR");
    return { major: major, n: n, next: p };
  }
  function readItem(b, off) {
    var h = readHead(b, off);
    switch (h.major) {
      case 0: return { v: h.n, next: h.next };
      case 1: return { v: -1 - h.n, next: h.next };
      case 2: return { v: b.slice(h.next, h.next + h.n), next: h.next + h.n };
      case 3: return { v: new TextDecoder().decode(b.slice(h.next, h.next + h.n)), next: h.next + h.n };
    }
    throw new Error("unexpected CBOR item");
  }
  // parseReceipt splits a receipt's canonical CBOR (an array of 13, or of
  // 14 with an attestation hash: docs/VERIFICATION.md) into its fields and
  // the bytes the miner signed: its first 12 as an array of 12 (v1), or
  // that array and the attestation hash as an array of 2 (v2).
  function parseReceipt(raw) {
    var h = readHead(raw, 0);
    if (h.major !== 4 || (h.n !== 13 && h.n !== 14)) throw new Error("not a receipt");
    var off = h.next, items = [], start = off, endOf12 = 0, endOf13 = 0;
    for (var i = 0; i < h.n; i++) {
      var it = readItem(raw, off);
      items.push(it.v);
      off = it.next;
      if (i === 11) endOf12 = off;
      if (i === 12) endOf13 = off;
    }
    if (off !== raw.length) throw new Error("trailing bytes");
    var doc = concat(new Uint8Array([0x8c]), raw.slice(start, endOf12));
    var domain = receiptDomain;
    if (h.n === 14) {
      doc = concat(concat(new Uint8Array([0x82]), doc), raw.slice(endOf13, off));
      domain = receiptDomainV2;
    }
    return { jobID: items[0], chainID: items[1], miner: items[2], customer: items[3], model: items[4], promptHash: items[5],
      resultHash: items[6], tokensIn: items[7], tokensOut: items[8], sig: items[12], doc: doc, domain: domain };
  }
  var receiptDomain = new TextEncoder().encode("AITBC/receipt/v1\u0000");
  var receiptDomainV2 = new TextEncoder().encode("AITBC/receipt/v2\u0000");

  // verifyReceipt runs every check and returns [{ok, text}].
  function verifyReceipt(raw, pubHex, want) {
    var r, checks = [];
    try { r = parseReceipt(raw); } catch (e) { return Promise.resolve([{ ok: false, text: "The receipt could not be read: " + e.message }]); }
    var pub;
    try { pub = hexToBytes(pubHex); } catch (e) { pub = new Uint8Array(0); }
    function add(ok, yes, no) { checks.push({ ok: ok, text: ok ? yes : no }); }
    if (want.job) add(toHex(r.jobID) === want.job, "The receipt is for this job.", "The receipt names another job.");
    if (want.chain) add(r.chainID === want.chain, "The receipt is for this chain (" + want.chain + ").", "The receipt names another chain.");
    if (want.promptHash) add(toHex(r.promptHash) === want.promptHash, "Its prompt hash is the one the job recorded on chain.", "Its prompt hash differs from the job's record.");
    return sha256(raw).then(function (h) {
      if (want.anchored) add(toHex(h) === want.anchored, "Its hash is the one anchored on chain by the settlement.", "Its hash is not the one anchored on chain.");
      return sha256(pub);
    }).then(function (ph) {
      add(pub.length === 32 && equal(ph.slice(0, 20), r.miner), "The signing key is the miner's: it derives the miner's address.", "The key does not belong to the miner the receipt names.");
      return sha256(concat(r.domain, r.doc));
    }).then(function (digest) {
      if (!crypto.subtle || pub.length !== 32) { add(false, "", "No miner key to check the signature with."); return checks; }
      return crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]).then(function (key) {
        return crypto.subtle.verify({ name: "Ed25519" }, key, r.sig, digest);
      }).then(function (ok) {
        add(ok, "The miner's Ed25519 signature over the receipt is valid.", "The signature does not verify.");
        return checks;
      }, function (e) {
        add(false, "", "This browser cannot check Ed25519 signatures (" + e.name + ").");
        return checks;
      });
    }).then(function () { return { checks: checks, receipt: r }; });
  }
  function showChecks(out, checks) {
    out.textContent = "";
    var all = checks.every(function (c) { return c.ok; });
    out.appendChild(el("p", all ? "Verified: the receipt checks out." : "Not verified: a check failed.", { "class": all ? "st st-settled" : "st st-failed", id: "verify-verdict" }));
    var ul = el("ul", null, { "class": "checks" });
    checks.forEach(function (c) { ul.appendChild(el("li", c.text, { "class": c.ok ? "ok" : "bad", "data-mark": c.ok ? "\u2713" : "\u2717" })); });
    out.appendChild(ul);
  }
  function startVerify() {
    var box = document.getElementById("verify");
    var btn = document.getElementById("verify-button");
    if (!box || !btn) return;
    btn.addEventListener("click", function () {
      var out = document.getElementById("verify-out");
      if (!window.crypto || !crypto.subtle) { out.textContent = "This page is not in a secure context (https or localhost), so the browser offers no cryptography to check with."; return; }
      out.textContent = "Checking\u2026";
      var d = box.dataset;
      verifyReceipt(b64ToBytes(d.receipt), d.pubkey, { job: d.job, chain: d.chain, anchored: d.anchored, promptHash: d.promptHash })
        .then(function (res) { showChecks(out, res.checks); }, function (e) { out.textContent = "The check failed: " + e.message; });
    });
  }

  // ---- a job's stream
  function startJob() {
    var box = document.getElementById("job");
    if (!box || box.getAttribute("data-done") || !window.EventSource) return;
    var out = document.getElementById("job-output");
    var statusEl = document.getElementById("job-status");
    var minerEl = document.getElementById("job-miner");
    var problem = document.getElementById("job-problem");
    var receiptBox = document.getElementById("job-receipt");
    var settleBox = document.getElementById("job-settlement");
    var result = null, receipt = null;
    var es = new EventSource(box.getAttribute("data-events"));
    // The stream starts with the text so far: a reconnect starts over.
    es.onopen = function () { out.textContent = ""; };
    es.addEventListener("status", function (ev) {
      var e = JSON.parse(ev.data);
      if (e.status) statusEl.textContent = e.status;
      if (e.miner) minerEl.textContent = e.miner;
      if (e.status === "requeued") out.textContent = "";
    });
    es.addEventListener("token", function (ev) { out.textContent += JSON.parse(ev.data).text || ""; });
    es.addEventListener("done", function (ev) {
      var e = JSON.parse(ev.data);
      statusEl.textContent = e.status || "done";
      if (e.error) { problem.hidden = false; problem.textContent = e.error; }
    });
    es.addEventListener("problem", function (ev) { problem.hidden = false; problem.textContent = JSON.parse(ev.data).message; });
    es.addEventListener("result", function (ev) { result = JSON.parse(ev.data).text; out.textContent = result; });
    es.addEventListener("receipt", function (ev) {
      receipt = JSON.parse(ev.data);
      receiptBox.textContent = "";
      receiptBox.appendChild(el("p", "Receipt " + receipt.hash + ": " + receipt.tokens_in + " tokens in, " + receipt.tokens_out + " out, " + receipt.price + " AITBC, signed by the miner.", { id: "receipt-line" }));
      if (result !== null && window.crypto && crypto.subtle) {
        sha256(new TextEncoder().encode(result)).then(function (h) {
          var ok = toHex(h) === receipt.result_hash;
          receiptBox.appendChild(el("p", ok ? "The text above hashes to the receipt's result hash." : "The text above does not match the receipt's result hash.", { "class": ok ? "st st-settled" : "st st-failed" }));
        });
      }
    });
    es.addEventListener("settlement", function (ev) {
      var s = JSON.parse(ev.data);
      settleBox.textContent = "";
      var p = el("p", null, { id: "settlement-line" });
      if (s.status === "settled") p.textContent = "Settled at block " + s.settled_height + ": " + s.paid + " AITBC to the miner, " + s.protocol_fee + " AITBC protocol fee, " + s.refund + " AITBC refunded. ";
      else p.textContent = "On chain the job is " + s.status + ". ";
      p.appendChild(link(s.explorer, "See it in the explorer"));
      settleBox.appendChild(p);
      statusEl.textContent = s.status;
    });
    es.addEventListener("end", function () { es.close(); });
  }

  function start() { startLive(); startVerify(); startJob(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
