// The neuron page's prompt box: POST /api/predict, then show per token the neuron's
// real activation (normalised by its max) beside the graph's prediction.
"use strict";

(function () {
  const form = document.getElementById("predict");
  const out = document.getElementById("prediction");
  if (!form || !out) return;

  function shade(x) {
    const v = Math.max(0, Math.min(1, Number.isFinite(x) ? x : 0));
    const mix = (c) => Math.round(255 - (255 - c) * v);
    return "rgb(" + mix(230) + "," + mix(0) + "," + mix(0) + ")";
  }

  function visible(t) {
    if (t === "") return "∅";
    return t.replace(/\n/g, "↵").replace(/\t/g, "⇥").replace(/\r/g, "␍");
  }

  function strip(tokens, values, first, label) {
    const row = document.createElement("div");
    row.className = "row";
    const name = document.createElement("span");
    name.textContent = label;
    row.appendChild(name);
    const s = document.createElement("span");
    s.className = "strip";
    for (let i = first; i < tokens.length; i++) {
      const tok = document.createElement("span");
      tok.className = "tok";
      tok.textContent = visible(tokens[i]);
      tok.style.background = shade(values[i]);
      if (values[i] > 0.6) tok.style.color = "#fff";
      tok.title = values[i].toFixed(3);
      s.appendChild(tok);
    }
    row.appendChild(s);
    return row;
  }

  function table(view, first) {
    const t = document.createElement("table");
    t.innerHTML = "<thead><tr><th>token</th><th>activation</th><th>/ max</th><th>predicted</th></tr></thead>";
    const body = document.createElement("tbody");
    for (let i = first; i < view.tokens.length; i++) {
      const tr = document.createElement("tr");
      const cells = [visible(view.tokens[i]), view.activations[i].toFixed(3),
        view.normalized[i].toFixed(3), view.predicted[i].toFixed(3)];
      cells.forEach((c, j) => {
        const td = document.createElement("td");
        if (j === 0) td.className = "t";
        td.textContent = c;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    }
    t.appendChild(body);
    return t;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = form.elements.text.value;
    out.textContent = "Running…";
    try {
      const response = await fetch("/api/predict", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ neuron: form.dataset.neuron, text: text }),
      });
      const body = await response.json();
      out.textContent = "";
      if (!response.ok) {
        const p = document.createElement("p");
        p.className = "problem";
        p.textContent = body.error || ("error " + response.status);
        out.appendChild(p);
        return;
      }
      const first = body.bos ? 1 : 0;
      out.appendChild(strip(body.tokens, body.normalized, first, "neuron (act / max)"));
      out.appendChild(strip(body.tokens, body.predicted, first, "graph's prediction"));
      out.appendChild(table(body, first));
    } catch (e) {
      out.textContent = "The request failed: " + e;
    }
  });
})();
