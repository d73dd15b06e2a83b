// The explorer posts what is typed to the page's own URL: /graphql, or /t/{tenant}/graphql. It keeps
// what was typed in localStorage, per page, and loads nothing from anywhere else.
"use strict";

const defaults = {
  query: `mutation Verify($token: String!) {
  tokenVerify(token: $token) {
    isValid
    payload
    errors { field message code }
  }
}`,
  variables: `{"token": ""}`,
  headers: `{}`,
};

function parseJSON(label, text) {
  if (text.trim() === "") return {};
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("not an object");
    return v;
  } catch (e) {
    throw new Error(`${label} must be a JSON object: ${e.message}`);
  }
}

async function run(fields, status, result) {
  const endpoint = location.pathname;
  let variables, headers;
  try {
    variables = parseJSON("Variables", fields.variables.value);
    headers = parseJSON("HTTP headers", fields.headers.value);
  } catch (e) {
    status.textContent = e.message;
    return;
  }
  status.textContent = "Running…";
  result.textContent = "";
  const started = performance.now();
  try {
    const res = await fetch(endpoint, {
      method: "POST",
      headers: { ...headers, "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ query: fields.query.value, variables }),
      credentials: "omit",
    });
    const text = await res.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON: show as is */ }
    result.textContent = shown;
    status.textContent = `HTTP ${res.status} in ${Math.round(performance.now() - started)} ms`;
  } catch (e) {
    status.textContent = `Request failed: ${e.message}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const fields = {
    query: document.getElementById("query"),
    variables: document.getElementById("variables"),
    headers: document.getElementById("headers"),
  };
  const status = document.getElementById("status");
  const result = document.getElementById("result");
  document.getElementById("endpoint").textContent = location.origin + location.pathname;
  for (const [name, el] of Object.entries(fields)) {
    const key = `latch-explorer:${location.pathname}:${name}`;
    el.value = localStorage.getItem(key) ?? defaults[name];
    el.addEventListener("input", () => localStorage.setItem(key, el.value));
  }
  document.getElementById("run").addEventListener("click", () => run(fields, status, result));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      run(fields, status, result);
    }
  });
});
