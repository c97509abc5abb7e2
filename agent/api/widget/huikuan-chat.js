/*! Huikuan chat widget: one tag, no dependencies.
 * <script src="https://HOST/widget/huikuan-chat.js" data-token="TOKEN" data-title="在线客服" defer></script>
 * Optional: data-open="true" (open at once), data-ws-url="wss://…/ws/chat" (override).
 * API: window.HuikuanChat.open({token}), .close(), .send(text), .configure({token, title}).
 */
(function () {
  "use strict";
  if (window.HuikuanChat && window.HuikuanChat.version) return; // loaded twice
  var MAX = 2000;
  var me = document.currentScript || document.querySelector('script[src*="huikuan-chat.js"]');
  var ds = (me && me.dataset) || {};
  var cfg = { token: ds.token || "", title: ds.title || "在线客服" };

  function wsUrl() {
    if (ds.wsUrl) return ds.wsUrl;
    var u = new URL((me && me.src) || location.href, location.href);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    u.pathname = "/ws/chat"; u.search = ""; u.hash = "";
    return u.toString();
  }

  var CSS = [
    "#hk-root,#hk-root *{box-sizing:border-box;margin:0;padding:0;font:14px/1.45 system-ui,-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;letter-spacing:normal;text-transform:none}",
    "#hk-root{position:fixed;right:20px;bottom:20px;z-index:2147483000;color:#1f2328}",
    "#hk-root .hk-launcher{width:56px;height:56px;border:0;border-radius:50%;background:#1565c0;color:#fff;font-size:15px;font-weight:600;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25)}",
    "#hk-root .hk-launcher:focus-visible,#hk-root button:focus-visible,#hk-root textarea:focus-visible{outline:3px solid #ffb300;outline-offset:2px}",
    "#hk-root .hk-panel{position:absolute;right:0;bottom:68px;width:360px;height:520px;max-height:calc(100vh - 100px);display:flex;flex-direction:column;background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25);overflow:hidden}",
    "#hk-root .hk-head{display:flex;align-items:center;gap:8px;padding:10px 12px;background:#1565c0;color:#fff}",
    "#hk-root .hk-title{flex:1;font-weight:600;color:#fff}",
    "#hk-root .hk-status{font-size:12px;color:#dbe8ff}",
    "#hk-root .hk-close{background:none;border:0;color:#fff;font-size:20px;cursor:pointer;width:28px;height:28px}",
    "#hk-root .hk-log{flex:1;overflow-y:auto;padding:12px;background:#f5f7fa;display:flex;flex-direction:column;gap:8px}",
    "#hk-root .hk-msg{max-width:82%;padding:8px 11px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word;overflow-wrap:anywhere}",
    "#hk-root .hk-agent{align-self:flex-start;background:#fff;border:1px solid #e1e4e8}",
    "#hk-root .hk-borrower{align-self:flex-end;background:#1565c0;color:#fff}",
    "#hk-root .hk-note{align-self:center;font-size:12px;color:#6a737d}",
    "#hk-root .hk-error{margin:0 12px 6px;padding:6px 10px;font-size:12px;color:#86181d;background:#ffeef0;border-radius:6px}",
    "#hk-root .hk-panel[hidden],#hk-root .hk-error[hidden]{display:none}",
    "#hk-root .hk-form{display:flex;gap:8px;align-items:flex-end;padding:8px 12px 10px;border-top:1px solid #e1e4e8}",
    "#hk-root .hk-input{flex:1;resize:none;min-height:38px;max-height:120px;padding:8px;border:1px solid #d0d7de;border-radius:8px;background:#fff;color:#1f2328}",
    "#hk-root .hk-send{height:38px;padding:0 14px;border:0;border-radius:8px;background:#1565c0;color:#fff;cursor:pointer}",
    "#hk-root .hk-send:disabled,#hk-root .hk-input:disabled{opacity:.5;cursor:not-allowed}",
    "#hk-root .hk-count{display:block;padding:0 12px 6px;text-align:right;font-size:11px;color:#6a737d}#hk-root .hk-count.hk-over{color:#d73a49}",
    ".hk-sr{position:absolute!important;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}",
    "@media (max-width:480px){#hk-root{right:12px;bottom:12px}#hk-root .hk-panel{position:fixed;inset:0;width:100%;height:100%;max-height:none;border-radius:0}#hk-root.hk-open .hk-launcher{display:none}}"
  ].join("\n");

  // Build DOM with createElement/textContent only: no HTML parsing of any text.
  function el(tag, attrs, text) {
    var n = document.createElement(tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) n.setAttribute(k, attrs[k]);
    if (text != null) n.textContent = text;
    return n;
  }

  var ui = null, ws = null, state = "idle", ended = false, fatal = false, wanted = false, retries = 0;
  var retryTimer = null, errTimer = null, conversationId = null, outbox = [];

  function build() {
    if (ui) return ui;
    var style = el("style", { id: "hk-style" }); style.textContent = CSS;
    (document.head || document.documentElement).appendChild(style);
    var root = el("div", { id: "hk-root" });
    var launcher = el("button", { id: "hk-launcher", "class": "hk-launcher", type: "button",
      "aria-label": "打开" + cfg.title, "aria-expanded": "false", "aria-controls": "hk-panel" }, "客服");
    var panel = el("div", { id: "hk-panel", "class": "hk-panel", role: "dialog",
      "aria-label": cfg.title, hidden: "" });
    var head = el("div", { "class": "hk-head" });
    var title = el("span", { "class": "hk-title", id: "hk-title" }, cfg.title);
    var status = el("span", { id: "hk-status", "class": "hk-status", role: "status",
      "data-state": "idle" }, "");
    var close = el("button", { "class": "hk-close", id: "hk-close", type: "button",
      "aria-label": "关闭" }, "×");
    head.append(title, status, close);
    var log = el("div", { id: "hk-log", "class": "hk-log", role: "log", "aria-live": "polite",
      "aria-relevant": "additions", tabindex: "0", "aria-label": "对话记录" });
    var error = el("div", { "class": "hk-error", id: "hk-error", role: "alert", hidden: "" });
    var form = el("form", { "class": "hk-form", novalidate: "" });
    var label = el("label", { "for": "hk-input", "class": "hk-sr" }, "输入消息");
    var input = el("textarea", { id: "hk-input", "class": "hk-input", rows: "1",
      maxlength: String(MAX), placeholder: "请输入消息，Enter 发送，Shift+Enter 换行",
      "aria-describedby": "hk-count" });
    var send = el("button", { id: "hk-send", "class": "hk-send", type: "submit" }, "发送");
    var count = el("span", { id: "hk-count", "class": "hk-count", "aria-live": "off" }, "0/" + MAX);
    form.append(label, input, send);
    panel.append(head, log, error, form, count);
    root.append(panel, launcher);
    document.body.appendChild(root);

    launcher.addEventListener("click", function () { panel.hidden ? open() : hide(); });
    close.addEventListener("click", hide);
    panel.addEventListener("keydown", function (e) { if (e.key === "Escape") hide(); });
    input.addEventListener("input", updateCount);
    input.addEventListener("keydown", function (e) {
      // Enter sends; Shift+Enter is a newline; never send mid-IME composition (pinyin).
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault(); submit();
      }
    });
    form.addEventListener("submit", function (e) { e.preventDefault(); submit(); });
    ui = { root: root, launcher: launcher, panel: panel, log: log, error: error, input: input,
      send: send, count: count, status: status, title: title };
    return ui;
  }

  function updateCount() {
    var n = ui.input.value.length;
    ui.count.textContent = n + "/" + MAX;
    ui.count.classList.toggle("hk-over", n > MAX);
  }

  function setState(s, text) {
    state = s;
    if (!ui) return;
    ui.status.setAttribute("data-state", s);
    ui.status.textContent = text;
    var off = ended || fatal;
    ui.input.disabled = off; ui.send.disabled = off;
  }

  function showError(text, sticky) {
    clearTimeout(errTimer);
    ui.error.textContent = text; ui.error.hidden = false;
    if (!sticky) errTimer = setTimeout(function () { ui.error.hidden = true; }, 8000);
  }

  function add(kind, text) {
    var cls = kind === "note" ? "hk-note" : "hk-msg hk-" + kind;
    var n = el("div", { "class": cls }, String(text));
    ui.log.appendChild(n);
    ui.log.scrollTop = ui.log.scrollHeight;
    return n;
  }

  function connect() {
    if (fatal || ended || (ws && ws.readyState <= 1)) return;
    if (!cfg.token) { fatal = true; setState("unauthorized", "未授权"); showError("缺少会话凭证，无法连接客服。", true); return; }
    setState(retries ? "reconnecting" : "connecting", retries ? "正在重新连接…" : "连接中…");
    var sock;
    try { sock = new WebSocket(wsUrl()); } catch (err) { scheduleRetry(); return; }
    ws = sock;
    sock.onopen = function () {
      var start = { type: "start", token: cfg.token };
      if (conversationId) start.conversation_id = conversationId; // resume hint
      sock.send(JSON.stringify(start));
      // Keep idle connections alive through proxies; the server answers {"type":"pong"}.
      sock.hkPing = setInterval(function () {
        if (sock.readyState === 1 && state === "open") sock.send('{"type":"ping"}');
      }, 25000);
    };
    sock.onmessage = function (ev) {
      var f;
      try { f = JSON.parse(ev.data); } catch (err) { return; }
      if (!f || typeof f !== "object") return;
      if (f.type === "message") {
        if (state !== "open") {
          retries = 0; setState("open", "在线");
          while (outbox.length && sock.readyState === 1) sock.send(JSON.stringify({ type: "message", text: outbox.shift() }));
        }
        if (f.conversation_id) {
          conversationId = String(f.conversation_id);
          ui.panel.setAttribute("data-conversation-id", conversationId);
        }
        if (typeof f.text === "string") add("agent", f.text);
      } else if (f.type === "end") {
        ended = true; setState("ended", "对话已结束");
        add("note", "对话已结束" + (f.reason ? "（" + f.reason + "）" : ""));
      } else if (f.type === "error") {
        if (f.code === "unauthorized") {
          fatal = true; setState("unauthorized", "未授权");
          showError("会话凭证无效或已过期，请刷新页面后重试。", true);
        } else {
          showError(f.message ? "提示：" + f.message : "消息未能处理（" + (f.code || "error") + "）");
        }
      }
    };
    sock.onclose = function (ev) {
      clearInterval(sock.hkPing);
      if (ws !== sock) return; // replaced by a newer connection (new token)
      ws = null;
      if (ev.code >= 4000 && ev.code < 5000 && !fatal) { // the server refused: never retry
        fatal = true;
        if (ev.code === 4401) { setState("unauthorized", "未授权"); showError("会话凭证无效或已过期，请刷新页面后重试。", true); }
        else { setState("closed", "已断开"); clearTimeout(errTimer); if (ui.error.hidden) showError("客服暂时无法接通（" + ev.code + "）。", true); }
      }
      if (!fatal && !ended && wanted) scheduleRetry();
    };
  }

  function scheduleRetry() {
    clearTimeout(retryTimer);
    if (retries >= 12) { setState("offline", "已断开"); showError("网络连接已断开，请稍后重试。", true); return; }
    var delay = Math.min(15000, 500 * Math.pow(2, retries)) * (0.8 + Math.random() * 0.4);
    retries += 1;
    setState("reconnecting", "连接中断，正在重连…");
    retryTimer = setTimeout(connect, delay);
  }

  function submit() {
    var text = ui.input.value;
    updateCount();
    if (!text.trim() || ended || fatal) return;
    if (text.length > MAX) { showError("消息不能超过 " + MAX + " 个字符。"); return; }
    add("borrower", text);
    ui.input.value = ""; updateCount();
    if (ws && ws.readyState === 1 && state === "open") ws.send(JSON.stringify({ type: "message", text: text }));
    else { outbox.push(text); connect(); }
  }

  function setToken(token) {
    if (!token || token === cfg.token) return;
    cfg.token = token; // a new session: forget the old one and any refusal of it
    fatal = ended = false; retries = 0; conversationId = null; clearTimeout(retryTimer);
    if (ws) { var old = ws; ws = null; old.close(); }
    if (ui) { ui.error.hidden = true; setState("idle", ""); }
  }

  function open(opts) {
    setToken(opts && opts.token);
    build();
    wanted = true;
    ui.panel.hidden = false;
    ui.root.classList.add("hk-open");
    ui.launcher.setAttribute("aria-expanded", "true");
    ui.launcher.setAttribute("aria-label", "关闭" + cfg.title);
    connect();
    ui.input.focus();
  }

  function hide() {
    if (!ui) return;
    ui.panel.hidden = true;
    ui.root.classList.remove("hk-open");
    ui.launcher.setAttribute("aria-expanded", "false");
    ui.launcher.setAttribute("aria-label", "打开" + cfg.title);
    ui.launcher.focus();
  }

  window.HuikuanChat = {
    version: "1",
    open: open,
    close: hide,
    send: function (text) { build(); ui.input.value = String(text); updateCount(); submit(); },
    configure: function (opts) {
      setToken(opts && opts.token);
      if (opts && opts.title) { cfg.title = opts.title; if (ui) ui.title.textContent = cfg.title; }
    }
  };

  function boot() { build(); if (ds.open === "true") open(); }
  if (document.body) boot(); else document.addEventListener("DOMContentLoaded", boot);
})();
