// The valle web page: choose a voice, type text, synthesise, play and download.
"use strict";

const $ = (id) => document.getElementById(id);
let recording = null;   // a WAV Blob made from the microphone
let limits = { max_text_chars: 1000 };

function say(message, isError = false) {
  $("status").textContent = message;
  $("status").className = isError ? "error" : "";
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.error || JSON.stringify(body);
  } catch {
    return `the server answered ${response.status} ${response.statusText}`;
  }
}

let voices = [];

async function loadVoices(select) {
  const response = await fetch("/v1/voices");
  voices = await response.json();
  $("voice").innerHTML = "";
  for (const v of voices) {
    const label = v.bundled ? `${v.id}: ${v.name}` : v.name;
    const option = new Option(`${label} (${v.bundled ? "bundled" : "saved"}, ${v.seconds} s)`, v.id);
    option.title = label;
    $("voice").add(option);
  }
  if (select) $("voice").value = select;
  showVoice();
}

// The chosen voice's whole name and transcript, which the list may cut short.
function showVoice() {
  const v = voices.find((v) => v.id === $("voice").value);
  $("voice-info").textContent = v ? `${v.name}${v.transcript ? `: "${v.transcript}"` : ""}` : "";
}
$("voice").addEventListener("change", showVoice);

// What the server's check found in a recording (POST /v1/prompt/check), shown before any synthesis.
function showCheck(report) {
  const box = $("prompt-check");
  box.innerHTML = "";
  box.className = report.ok ? "note" : "note problems";
  const head = document.createElement("div");
  const picked = report.picked ? ` It is long: its best ${(report.picked.end - report.picked.start).toFixed(1)} s, ` +
    `${report.picked.start.toFixed(2)}-${report.picked.end.toFixed(2)} s, will prompt.` : "";
  head.textContent = (report.ok ? `Recording checked: ${report.speech_seconds.toFixed(1)} s of speech, nothing found ` +
    "that would spoil the voice." : "Recording checked: this would spoil the cloned voice:") + picked;
  box.append(head);
  if (!report.ok) {
    const list = document.createElement("ul");
    for (const f of report.findings) {
      const item = document.createElement("li");
      item.dataset.code = f.code;
      item.textContent = f.advice;
      list.append(item);
    }
    box.append(list);
  }
}

async function checkPrompt(blob) {
  $("prompt-check").className = "note";
  $("prompt-check").textContent = "Checking the recording...";
  const form = new FormData();
  form.append("prompt", blob, blob.name || "prompt.wav");
  if ($("prompt-text").value.trim()) form.append("transcript", $("prompt-text").value.trim());
  try {
    const response = await fetch("/v1/prompt/check", { method: "POST", body: form });
    if (!response.ok) throw new Error(await errorText(response));
    showCheck(await response.json());
  } catch (e) {
    $("prompt-check").className = "note problems";
    $("prompt-check").textContent = `This recording cannot prompt: ${e.message}`;
  }
}

$("prompt-text").addEventListener("change", () => {  // the transcript lets the check count its sounds
  try {
    const blob = promptBlob();
    if (blob) checkPrompt(blob);
  } catch {
    // nothing chosen yet: checked when it is
  }
});

$("file").addEventListener("change", () => {
  if (!$("file").files.length) return;
  const file = $("file").files[0];
  document.querySelector("input[value=upload]").checked = true;
  $("voice-name").value = file.name.replace(/\.[^.]*$/, "");
  checkPrompt(file);
});

function source() {
  return document.querySelector("input[name=source]:checked").value;
}

// The prompt as a Blob for the chosen source, or null for a saved voice.
function promptBlob() {
  if (source() === "upload") {
    if (!$("file").files.length) throw new Error("choose a recording to upload first");
    return $("file").files[0];
  }
  if (source() === "record") {
    if (!recording) throw new Error("record your voice first (3 to 10 seconds)");
    return recording;
  }
  return null;
}

// Browsers record compressed audio (WebM/Ogg Opus); decode it and send 16-bit WAV, which every server reads.
async function toWav(blob) {
  const context = new AudioContext();
  const audio = await context.decodeAudioData(await blob.arrayBuffer());
  const samples = audio.getChannelData(0);
  const buffer = new ArrayBuffer(44 + samples.length * 2);
  const view = new DataView(buffer);
  const text = (offset, s) => [...s].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + samples.length * 2, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, audio.sampleRate, true); view.setUint32(28, audio.sampleRate * 2, true);
  view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, samples.length * 2, true);
  samples.forEach((x, i) => view.setInt16(44 + i * 2, Math.max(-1, Math.min(1, x)) * 0x7fff, true));
  await context.close();
  return new Blob([buffer], { type: "audio/wav" });
}

let recorder = null;
$("record").addEventListener("click", async () => {
  if (recorder) { recorder.stop(); return; }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (e) => chunks.push(e.data);
    recorder.onstop = async () => {
      stream.getTracks().forEach((t) => t.stop());
      recording = await toWav(new Blob(chunks, { type: recorder.mimeType }));
      recorder = null;
      $("record").textContent = "Record again";
      $("recorded").textContent = "recorded";
      document.querySelector("input[value=record]").checked = true;
      if (!$("voice-name").value) $("voice-name").value = "my recording";
      checkPrompt(recording);
    };
    recorder.start();
    $("record").textContent = "Stop recording";
    say("Recording: speak for 3 to 10 seconds, then press Stop.");
  } catch (e) {
    say(`The microphone could not be used: ${e.message}`, true);
  }
});

$("save-voice").addEventListener("click", async () => {
  try {
    const blob = promptBlob();
    if (!blob) { say("This voice is saved already; upload or record a new one to save it."); return; }
    const form = new FormData();
    form.append("prompt", blob, blob.name || "prompt.wav");
    if ($("prompt-text").value.trim()) form.append("transcript", $("prompt-text").value.trim());
    if ($("voice-name").value.trim()) form.append("name", $("voice-name").value.trim());
    const response = await fetch("/v1/voices", { method: "POST", body: form });
    if (!response.ok) throw new Error(await errorText(response));
    const voice = await response.json();
    await loadVoices(voice.id);
    document.querySelector("input[value=saved]").checked = true;
    say(`Saved the voice as "${voice.name}".`);
  } catch (e) {
    say(e.message, true);
  }
});

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) { out.set(p, offset); offset += p.length; }
  return out;
}

// The sample rate and where the samples start in a WAV header, or null while the header is incomplete.
function wavLayout(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const id = (offset) => String.fromCharCode(...bytes.slice(offset, offset + 4));
  if (bytes.length < 12) return null;
  if (id(0) !== "RIFF" || id(8) !== "WAVE") throw new Error("the server did not answer with a WAV stream");
  let offset = 12, rate = null;
  while (offset + 8 <= bytes.length) {
    const size = view.getUint32(offset + 4, true);
    if (id(offset) === "fmt " && offset + 16 <= bytes.length) rate = view.getUint32(offset + 12, true);
    if (id(offset) === "data") return { rate, dataOffset: offset + 8 };
    offset += 8 + size + (size % 2);
  }
  return null;
}

// Play a streamed WAV as it arrives (Web Audio, each piece scheduled after the last); returns the whole WAV.
async function playStream(response, started) {
  const reader = response.body.getReader();
  const context = new AudioContext();
  const parts = [];
  let layout = null, pending = new Uint8Array(0), next = 0, firstAudio = null;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    pending = concat([pending, value]);
    if (!layout) {
      layout = wavLayout(pending);
      if (!layout) continue;
      pending = pending.slice(layout.dataOffset);
    }
    const usable = pending.length - (pending.length % 2);
    if (!usable) continue;
    const pcm = new Int16Array(pending.slice(0, usable).buffer);
    pending = pending.slice(usable);
    const buffer = context.createBuffer(1, pcm.length, layout.rate);
    buffer.getChannelData(0).set(Float32Array.from(pcm, (x) => x / 32768));
    const node = context.createBufferSource();
    node.buffer = buffer;
    node.connect(context.destination);
    next = Math.max(next, context.currentTime + 0.05);
    node.start(next);
    next += buffer.duration;
    if (firstAudio === null) {
      firstAudio = performance.now() - started;
      window.valleFirstAudio = firstAudio;
      say(`Playing: first audio after ${firstAudio.toFixed(0)} ms...`);
    }
  }
  window.valleStreamEnd = performance.now() - started;
  const whole = concat(parts);  // a complete WAV for the player and the download: the sizes filled in
  const view = new DataView(whole.buffer);
  view.setUint32(4, whole.length - 8, true);
  if (layout) view.setUint32(layout.dataOffset - 4, whole.length - layout.dataOffset, true);
  return { blob: new Blob([whole], { type: "audio/wav" }), firstAudio };
}

$("synthesize").addEventListener("click", async () => {
  const form = new FormData();
  try {
    const blob = promptBlob();
    if (blob) form.append("prompt", blob, blob.name || "prompt.wav");
    else form.append("voice_id", $("voice").value);
  } catch (e) {
    say(e.message, true);
    return;
  }
  form.append("text", $("text").value);
  if ($("prompt-text").value.trim()) form.append("prompt_text", $("prompt-text").value.trim());
  form.append("temperature", $("temperature").value);
  form.append("top_k", $("top-k").value);
  form.append("top_p", $("top-p").value);
  if ($("seed").value !== "") form.append("seed", $("seed").value);
  if (!$("languages").hidden) {
    form.append("language", $("language").value);
    if ($("prompt-language").value) form.append("prompt_language", $("prompt-language").value);
  }
  const streaming = $("stream").checked;
  if (streaming) form.append("stream", "true");

  $("synthesize").disabled = true;
  $("result").hidden = true;
  const started = performance.now();
  const tick = setInterval(() => say(`Synthesising... ${((performance.now() - started) / 1000).toFixed(0)} s`), 500);
  say("Synthesising...");
  try {
    const response = await fetch("/v1/synthesize", { method: "POST", body: form });
    if (!response.ok) throw new Error(await errorText(response));
    if (streaming) clearInterval(tick);
    const { blob, firstAudio } = streaming ? await playStream(response, started) : { blob: await response.blob() };
    const url = URL.createObjectURL(blob);
    $("audio").src = url;
    $("download").href = url;
    $("result").hidden = false;
    const took = ((performance.now() - started) / 1000).toFixed(1);
    say(streaming ? `Done: first audio after ${firstAudio === null ? "-" : firstAudio.toFixed(0)} ms, all in ${took} s.`
      : `Done: ${response.headers.get("X-Audio-Seconds")} s of speech in ${response.headers.get("X-Synthesis-Seconds")} s.`);
  } catch (e) {
    say(`Synthesis failed: ${e.message}`, true);
  } finally {
    clearInterval(tick);
    $("synthesize").disabled = false;
  }
});

function count() {
  const n = $("text").value.length;
  $("count").textContent = `${n} of ${limits.max_text_chars} characters`;
}
$("text").addEventListener("input", count);

// A model trained on several languages (VALL-E X) speaks each of them in any voice: menus of its languages.
function showLanguages(languages) {
  if (!languages.length) return;
  for (const select of [$("language"), $("prompt-language")]) {
    for (const code of languages) select.append(new Option(code, code));
  }
  $("languages").hidden = false;
}

(async () => {
  try {
    const health = await (await fetch("/health")).json();
    limits = health.limits;
    showLanguages(health.languages);
    $("temperature").value = health.sampling.temperature;  // the model's own sampling, to start from
    $("top-k").value = health.sampling.top_k;
    $("top-p").value = health.sampling.top_p;
    await loadVoices();
  } catch (e) {
    say(`The server cannot be reached: ${e.message}`, true);
  }
  count();
})();
