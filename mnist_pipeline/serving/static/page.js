"use strict";
const canvas = document.getElementById("canvas");
const context = canvas.getContext("2d");
const bars = document.getElementById("bars");
const statusLine = document.getElementById("status");
const correction = document.getElementById("send-correction");
const confirmation = document.getElementById("confirm");
let image = null;  // the last image sent for prediction: what a correction labels
let shown = null;  // the answer shown: its prediction_id joins the label to it

for (let digit = 0; digit < 10; digit++) {
  bars.insertAdjacentHTML("beforeend",
    `<div class="row" data-digit="${digit}"><span>${digit}</span><div class="track"><div class="bar"></div></div><span class="p"></span></div>`);
  document.getElementById("label").insertAdjacentHTML("beforeend", `<option>${digit}</option>`);
}

function clearCanvas() {
  context.fillStyle = "#fff";
  context.fillRect(0, 0, canvas.width, canvas.height);
}
clearCanvas();

function say(text, isError = false) {
  statusLine.textContent = text;
  statusLine.className = isError ? "error" : "";
}

async function errorOf(response) {
  try { return (await response.json()).error; } catch { return `HTTP ${response.status}`; }
}

function show(answer) {
  document.getElementById("digit").textContent = answer.digit;
  document.getElementById("version").textContent = `(model ${answer.version})`;
  answer.probabilities.forEach((p, digit) => {
    const row = bars.children[digit];
    row.querySelector(".bar").style.width = `${(100 * p).toFixed(1)}%`;
    row.querySelector(".p").textContent = `${(100 * p).toFixed(1)}%`;
    row.classList.toggle("best", digit === answer.digit);
  });
  document.getElementById("label").value = answer.digit;
  shown = answer;
  correction.disabled = confirmation.disabled = false;
}

let latest = 0;  // answers to earlier strokes that arrive late are dropped
async function predict(blob) {
  const request = ++latest;
  image = blob;
  correction.disabled = confirmation.disabled = true;  // until this image's answer (and its id) is shown
  document.body.dataset.state = "predicting";
  say("predicting...");
  const response = await fetch("predict", { method: "POST", body: blob });
  const answer = response.ok ? await response.json() : await errorOf(response);
  if (request !== latest) return;
  if (response.ok) { show(answer); say(""); } else { say(answer, true); }
  document.body.dataset.state = "ready";
}

// The image goes too: the service may not have logged the answer's digit (sampling, logging off, a restart).
async function sendFeedback(label, confirmed) {
  const headers = {};
  const token = document.getElementById("token").value;
  if (token) headers.Authorization = `Bearer ${token}`;
  const query = new URLSearchParams({ label, prediction_id: shown.prediction_id, confirmed });
  const response = await fetch(`feedback?${query}`, { method: "POST", body: image, headers });
  if (response.status === 401) {
    document.getElementById("token-row").hidden = false;
    say("This service needs a feedback token: enter it and send again.", true);
    return;
  }
  if (!response.ok) { say(await errorOf(response), true); return; }
  const stored = await response.json();
  const what = confirmed ? "confirmed" : "stored";
  say(`Thank you: ${what} as ${stored.label} (${stored.outcome}); the store holds ${stored.examples} examples.`);
  correction.disabled = confirmation.disabled = true;  // one label per answer
}

let drawing = false;
function point(event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}
canvas.addEventListener("pointerdown", (event) => {
  drawing = true;
  canvas.setPointerCapture(event.pointerId);
  context.lineWidth = 18;
  context.lineCap = context.lineJoin = "round";
  context.strokeStyle = "#000";
  context.beginPath();
  context.moveTo(...point(event));
});
canvas.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  context.lineTo(...point(event));
  context.stroke();
});
function endStroke() {
  if (!drawing) return;
  drawing = false;
  document.body.dataset.state = "predicting";
  canvas.toBlob(predict, "image/png");
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);
document.getElementById("clear").addEventListener("click", () => {
  clearCanvas();
  correction.disabled = confirmation.disabled = true;
  document.getElementById("digit").textContent = "";
});
document.getElementById("file").addEventListener("change", async (event) => {
  if (!event.target.files.length) return;
  const file = event.target.files[0];
  clearCanvas();
  try {  // shown on the canvas, fitted; the file itself is what is predicted
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(canvas.width / bitmap.width, canvas.height / bitmap.height);
    const width = bitmap.width * scale, height = bitmap.height * scale;
    context.drawImage(bitmap, (canvas.width - width) / 2, (canvas.height - height) / 2, width, height);
  } catch { /* not an image the browser can show: the service says what is wrong with it */ }
  predict(file);
});
correction.addEventListener("click", () => sendFeedback(document.getElementById("label").value, false));
confirmation.addEventListener("click", () => sendFeedback(String(shown.digit), true));
