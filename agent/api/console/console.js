/* Huikuan supervisor console: conversations, masked transcripts, recordings and reviews.
 * Static, no build step. Every piece of data reaches the page through textContent. */
(function () {
  "use strict";

  var KEY_STORE = "huikuan.console.apiKey";
  var REVIEWER_STORE = "huikuan.console.reviewer";
  var API = "../api/v1/conversations";

  var FLAG_NAMES = {
    complaint: "投诉", dispute: "异议", handoff: "转人工", cease_requested: "要求停止联系",
    wrong_party: "非本人", abuse: "辱骂", compliance_blocked: "合规拦截"
  };
  var INTENT_NAMES = {
    greeting: "问候", confirm_identity: "确认身份", wrong_party: "非本人", ask_balance: "询问欠款",
    ask_due_date: "询问到期日", ask_payment_method: "询问还款方式", ask_fees: "询问费用",
    ask_early_settlement: "询问提前结清", ask_credit_impact: "询问征信影响",
    promise_to_pay: "承诺还款", claim_paid: "声称已还", request_extension: "申请延期",
    request_installment: "申请分期", request_waiver: "申请减免", hardship: "经济困难",
    dispute: "异议", refuse_to_pay: "拒绝还款", stop_contact: "要求停止联系", complaint: "投诉",
    request_human: "要求人工", callback_later: "稍后回电", affirm: "肯定", deny: "否定",
    abuse: "辱骂", other: "其他"
  };
  var WILLINGNESS_NAMES = { high: "高", medium: "中", low: "低", refuse: "拒绝", none: "无" };
  var CHANNEL_NAMES = { chat: "在线", voice: "电话", sms: "短信" };
  var SPEAKER_NAMES = { agent: "坐席（AI）", borrower: "借款人" };
  var PROMISE_STATUS = { pending: "待履约", kept: "已履约", broken: "已违约", cancelled: "已取消" };

  var state = { flag: "", q: "", unreviewed: false, qa: false, selected: null, listToken: 0,
                audioUrls: [] };

  function $(id) { return document.getElementById(id); }

  /* el("td", {className: "x", dataset: {id: "1"}}, ["text", node]) — strings become text. */
  function el(tag, props, children) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (name) {
      var value = props[name];
      if (name === "dataset") {
        Object.keys(value).forEach(function (k) { node.dataset[k] = value[k]; });
      } else if (name === "attrs") {
        Object.keys(value).forEach(function (k) { node.setAttribute(k, value[k]); });
      } else {
        node[name] = value;
      }
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function text(value) { return value === null || value === undefined || value === "" ? "—" : String(value); }

  function when(iso) {
    if (!iso) return "—";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.toLocaleString("zh-CN", { hour12: false });
  }

  function timeEl(iso) {
    return el("time", { dateTime: iso || "", title: iso || "" }, [when(iso)]);
  }

  function getKey() { return sessionStorage.getItem(KEY_STORE) || ""; }

  function ApiError(status, message) { this.status = status; this.message = message; }

  function api(path, options) {
    options = options || {};
    var headers = { Authorization: "Bearer " + getKey() };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(path, {
      method: options.method || "GET", headers: headers, cache: "no-store",
      body: options.body === undefined ? undefined : JSON.stringify(options.body)
    }).then(function (response) {
      if (response.status === 401) {
        showKeyPanel("API 密钥无效或已失效，请重新输入。");
        throw new ApiError(401, "unauthorized");
      }
      if (!response.ok) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          throw new ApiError(response.status, body.detail || ("HTTP " + response.status));
        });
      }
      return options.raw ? response : response.json();
    });
  }

  /* ---- key ---- */

  function showKeyPanel(message) {
    sessionStorage.removeItem(KEY_STORE);
    $("app").hidden = true;
    $("key-forget").hidden = true;
    $("key-panel").hidden = false;
    $("key-error").hidden = !message;
    $("key-error").textContent = message || "";
    $("key-input").value = "";
    $("key-input").focus();
  }

  function showApp() {
    $("key-panel").hidden = true;
    $("app").hidden = false;
    $("key-forget").hidden = false;
    loadList();
    var fromHash = conversationFromHash();
    if (fromHash) openConversation(fromHash);
  }

  /* ---- list ---- */

  function listQueries() {
    var base = { limit: "200" };
    if (state.qa) base.order = "qa";  // the QA queue: lowest score first
    if (state.flag) base.flag = state.flag;
    if (state.unreviewed) base.reviewed = "false";
    if (!state.q) return [base];
    // One search box for both identifiers: ask for each and merge.
    return [Object.assign({ loan_id: state.q }, base), Object.assign({ borrower_id: state.q }, base)];
  }

  function loadList() {
    var token = ++state.listToken;
    $("list-status").textContent = "加载中…";
    Promise.all(listQueries().map(function (params) {
      return api(API + "?" + new URLSearchParams(params).toString());
    })).then(function (pages) {
      if (token !== state.listToken) return;
      var seen = {}, rows = [];
      pages.forEach(function (page) {
        page.forEach(function (row) { if (!seen[row.id]) { seen[row.id] = true; rows.push(row); } });
      });
      rows.sort(state.qa ? function (a, b) { return a.qa_score - b.qa_score; } : function (a, b) {
        return a.started_at < b.started_at ? 1 : a.started_at > b.started_at ? -1 : 0;
      });
      renderList(rows);
    }).catch(function (err) {
      if (token === state.listToken && err.status !== 401) {
        $("list-status").textContent = "加载失败：" + err.message;
      }
    });
  }

  function flagChips(flags) {
    return el("span", { className: "chips" }, (flags || []).map(function (f) {
      return el("span", { className: "chip flag", title: f }, [FLAG_NAMES[f] || f]);
    }));
  }

  function renderList(rows) {
    var body = $("conv-list");
    body.replaceChildren();
    // What this list shows, for anyone (or any test) waiting on a particular view.
    body.dataset.q = state.q;
    body.dataset.flag = state.flag;
    body.dataset.unreviewed = String(state.unreviewed);
    body.dataset.qa = String(state.qa);
    rows.forEach(function (row) {
      var tr = el("tr", {
        className: "conv-row", tabIndex: 0, dataset: { id: row.id },
        attrs: { "aria-selected": String(row.id === state.selected) }
      }, [
        el("td", {}, [timeEl(row.started_at)]),
        el("td", { className: "channel" }, [CHANNEL_NAMES[row.channel] || text(row.channel)]),
        el("td", { className: "loan mono" }, [text(row.loan_id)]),
        el("td", { className: "borrower mono" }, [text(row.borrower_id)]),
        el("td", { className: "outcome" }, [text(row.outcome)]),
        el("td", { className: "flags" }, [flagChips(row.flags)]),
        el("td", { className: "qa-score", title: Object.keys(row.qa_violations || {}).join(", ") },
           [text(row.qa_score)]),
        el("td", { className: "reviewed" }, [
          row.reviewed ? el("span", { className: "chip ok" }, ["已审核"])
            : el("span", { className: "muted" }, ["未审核"])
        ])
      ]);
      tr.addEventListener("click", function () { openConversation(row.id); });
      tr.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          openConversation(row.id);
        }
      });
      body.appendChild(tr);
    });
    $("list-status").textContent = rows.length ? "共 " + rows.length + " 个会话" : "没有符合条件的会话";
  }

  function markSelected() {
    Array.prototype.forEach.call(document.querySelectorAll(".conv-row"), function (tr) {
      tr.setAttribute("aria-selected", String(tr.dataset.id === state.selected));
    });
  }

  /* ---- detail ---- */

  function conversationFromHash() {
    var match = /^#\/c\/(.+)$/.exec(location.hash);
    return match ? decodeURIComponent(match[1]) : null;
  }

  function openConversation(id) {
    state.selected = id;
    markSelected();
    if (conversationFromHash() !== id) history.replaceState(null, "", "#/c/" + encodeURIComponent(id));
    return api(API + "/" + encodeURIComponent(id)).then(function (conversation) {
      if (state.selected === id) renderDetail(conversation);
    }).catch(function (err) {
      if (err.status === 401) return;
      $("detail-body").hidden = true;
      $("detail-empty").hidden = false;
      $("detail-empty").textContent = "无法打开会话：" + err.message;
    });
  }

  function metaRow(label, value) {
    return [el("dt", {}, [label]), el("dd", {}, [value])];
  }

  function renderDetail(c) {
    $("detail-empty").hidden = true;
    $("detail-body").hidden = false;
    $("detail-body").dataset.conversationId = c.id;
    $("d-id").textContent = c.id;

    var meta = $("d-meta");
    meta.replaceChildren();
    [
      metaRow("渠道", (CHANNEL_NAMES[c.channel] || text(c.channel)) + " · " + text(c.direction)),
      metaRow("贷款", text(c.loan_id)), metaRow("借款人", text(c.borrower_id)),
      metaRow("结果", text(c.outcome)),
      metaRow("开始", timeEl(c.started_at)), metaRow("结束", timeEl(c.ended_at)),
      metaRow("还款意愿", WILLINGNESS_NAMES[c.willingness] || text(c.willingness)),
      metaRow("策略", text(c.strategy) + (c.segment ? " / " + c.segment : ""))
    ].forEach(function (pair) { pair.forEach(function (n) { meta.appendChild(n); }); });

    $("d-flags").replaceChildren(flagChips(c.flags));
    renderRecordings(c);
    renderTranscript(c.turns || []);
    renderPromises(c.promises || []);
    renderFlagDetails(c.flag_details || []);
    renderReviews(c.reviews || []);
    $("review-status").textContent = "";
    $("review-status").className = "";
  }

  function renderTranscript(turns) {
    var list = $("transcript");
    list.replaceChildren();
    turns.forEach(function (t) {
      var labels = [];
      if (t.intent) {
        var confidence = typeof t.intent_confidence === "number"
          ? " " + Math.round(t.intent_confidence * 100) + "%" : "";
        labels.push(el("span", { className: "chip intent", title: "意图" },
          ["意图：" + (INTENT_NAMES[t.intent] || t.intent) + " (" + t.intent + ")" + confidence]));
      }
      if (t.willingness) {
        labels.push(el("span", { className: "chip will", title: "还款意愿" },
          ["意愿：" + (WILLINGNESS_NAMES[t.willingness] || t.willingness)]));
      }
      (t.entities || []).forEach(function (e) {
        labels.push(el("span", { className: "chip entity", title: "实体 " + text(e.type) },
          [text(e.type) + "：" + text(e.value !== undefined && e.value !== null ? e.value : e.text)]));
      });
      if (t.act) labels.push(el("span", { className: "chip", title: "话术" }, [t.act]));
      var hits = (t.compliance || []).map(function (h) {
        return el("span", { className: "compliance-hit", attrs: { role: "note" } },
          ["合规" + (h.action === "blocked" ? "拦截" : "提示") + "：" + text(h.rule) +
           (h.message ? " — " + h.message : "")]);
      });
      var speaker = t.speaker === "borrower" ? "borrower" : "agent";
      list.appendChild(el("li", {
        className: "turn turn-" + speaker + (hits.length ? " has-compliance" : ""),
        dataset: { seq: String(t.seq), speaker: speaker }
      }, [
        el("div", { className: "turn-head" }, [
          el("span", { className: "turn-speaker" }, [SPEAKER_NAMES[speaker]]),
          el("span", {}, ["#" + t.seq]), timeEl(t.at)
        ]),
        el("div", { className: "turn-text" }, [t.text || ""]),
        el("div", { className: "turn-labels" }, labels)
      ].concat(hits)));
    });
    if (!turns.length) list.appendChild(el("li", { className: "muted" }, ["（无对话）"]));
  }

  function renderPromises(promises) {
    var body = $("d-promises").querySelector("tbody");
    body.replaceChildren();
    promises.forEach(function (p) {
      body.appendChild(el("tr", {}, [
        el("td", {}, [text(p.amount)]), el("td", {}, [text(p.due_date)]),
        el("td", {}, [PROMISE_STATUS[p.status] || text(p.status)]),
        el("td", {}, [timeEl(p.created_at)])
      ]));
    });
    if (!promises.length) {
      body.appendChild(el("tr", {}, [el("td", { colSpan: 4, className: "muted" }, ["无"])]));
    }
  }

  function renderFlagDetails(flags) {
    var list = $("d-flag-details");
    list.replaceChildren();
    flags.forEach(function (f) {
      list.appendChild(el("li", {}, [
        el("span", { className: "chip flag" }, [FLAG_NAMES[f.kind] || text(f.kind)]), " ",
        f.note || "", " ", el("span", { className: "muted" }, [when(f.at)])
      ]));
    });
    if (!flags.length) list.appendChild(el("li", { className: "muted" }, ["无"]));
  }

  function renderReviews(reviews) {
    var list = $("d-reviews");
    list.replaceChildren();
    reviews.forEach(function (r) {
      list.appendChild(el("li", { className: "review", dataset: { verdict: r.verdict } }, [
        el("span", { className: "chip " + (r.verdict === "issue" ? "issue" : "ok") },
          [r.verdict === "issue" ? "有问题" : "无问题"]), " ",
        el("strong", {}, [text(r.reviewer)]), " ",
        el("span", { className: "muted" }, [when(r.created_at)]), " ",
        el("span", { className: "review-note" }, [r.note || ""])
      ]));
    });
    if (!reviews.length) list.appendChild(el("li", { className: "muted" }, ["尚未审核"]));
  }

  /* ---- recordings: fetched with the key, played from a blob URL ---- */

  function renderRecordings(c) {
    state.audioUrls.forEach(function (url) { URL.revokeObjectURL(url); });
    state.audioUrls = [];
    var box = $("d-recordings");
    box.replaceChildren();
    var legs = Object.keys(c.recordings || {});
    if (!legs.length) {
      box.appendChild(el("p", { className: "muted" }, ["无录音"]));
      return;
    }
    legs.forEach(function (leg) {
      var status = el("span", { className: "muted" }, []);
      var label = el("span", { className: "ai-label", hidden: true }, []);
      var audio = el("audio", { controls: true, preload: "none", hidden: true }, []);
      var button = el("button", { type: "button" },
        ["播放" + (leg === "caller" ? "借款人" : leg === "agent" ? "坐席" : leg) + "录音"]);
      button.addEventListener("click", function () {
        button.disabled = true;
        status.textContent = "加载中…";
        api(API + "/" + encodeURIComponent(c.id) + "/recordings/" + encodeURIComponent(leg),
          { raw: true })
          .then(function (response) {
            showAiLabel(label, response.headers.get("X-AI-Content-Label"));
            return response.blob();
          })
          .then(function (blob) {
            var url = URL.createObjectURL(blob);
            state.audioUrls.push(url);
            audio.src = url;
            audio.hidden = false;
            button.hidden = true;
            status.textContent = "";
            return audio.play().catch(function () { /* autoplay refused: controls remain */ });
          })
          .catch(function (err) {
            button.disabled = false;
            status.textContent = "录音不可用：" + err.message;
          });
      });
      box.appendChild(el("div", { className: "recording", dataset: { leg: leg } },
        [button, audio, status, label]));
    });
  }

  /* The implicit AI-content label stored in the recording (人工智能生成合成内容标识办法). */
  function showAiLabel(node, header) {
    if (!header) return;
    var label;
    try { label = JSON.parse(header); } catch (e) { return; }
    node.textContent = "AI生成内容标识：" + (label.Label || "AI生成合成内容") +
      (label.ContentProducer ? "（" + label.ContentProducer + "）" : "");
    node.hidden = false;
  }

  /* ---- review ---- */

  function submitReview(event) {
    event.preventDefault();
    var id = state.selected;
    if (!id) return;
    var reviewer = $("review-reviewer").value.trim();
    var status = $("review-status");
    if (!reviewer) {
      status.className = "error";
      status.textContent = "请填写审核人。";
      $("review-reviewer").focus();
      return;
    }
    var verdict = document.querySelector("input[name=verdict]:checked").value;
    $("review-submit").disabled = true;
    status.className = "";
    status.textContent = "提交中…";
    api(API + "/" + encodeURIComponent(id) + "/reviews", {
      method: "POST", body: { verdict: verdict, note: $("review-note").value, reviewer: reviewer }
    }).then(function () {
      localStorage.setItem(REVIEWER_STORE, reviewer);
      $("review-note").value = "";
      return openConversation(id).then(function () {
        status.className = "ok";
        status.textContent = "审核已提交。";
        loadList();
      });
    }).catch(function (err) {
      if (err.status === 401) return;
      status.className = "error";
      status.textContent = "提交失败：" + err.message;
    }).then(function () { $("review-submit").disabled = false; });
  }

  /* ---- wiring ---- */

  function init() {
    $("key-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var key = $("key-input").value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY_STORE, key);
      $("key-input").value = "";
      showApp();
    });
    $("key-forget").addEventListener("click", function () { showKeyPanel(""); });
    $("search-form").addEventListener("submit", function (event) {
      event.preventDefault();
      state.q = $("search").value.trim();
      loadList();
    });
    $("search").addEventListener("search", function () {
      state.q = $("search").value.trim();
      loadList();
    });
    $("refresh").addEventListener("click", loadList);
    Array.prototype.forEach.call(document.querySelectorAll(".flag-filter"), function (button) {
      button.addEventListener("click", function () {
        state.flag = button.dataset.flag;
        Array.prototype.forEach.call(document.querySelectorAll(".flag-filter"), function (b) {
          b.setAttribute("aria-pressed", String(b === button));
        });
        loadList();
      });
    });
    $("filter-unreviewed").addEventListener("change", function () {
      state.unreviewed = $("filter-unreviewed").checked;
      loadList();
    });
    $("filter-qa").addEventListener("change", function () {
      state.qa = $("filter-qa").checked;
      loadList();
    });
    $("review-form").addEventListener("submit", submitReview);
    $("review-reviewer").value = localStorage.getItem(REVIEWER_STORE) || "";
    window.addEventListener("hashchange", function () {
      var id = conversationFromHash();
      if (id && id !== state.selected && getKey()) openConversation(id);
    });
    if (getKey()) showApp(); else showKeyPanel("");
  }

  init();
})();
