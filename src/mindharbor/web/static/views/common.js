// What both views share: the Parse SDK set up for this server, session hygiene (the token lives
// in sessionStorage, never localStorage; idle log-off with a warning; logout clears everything),
// error display and small widgets. Every rule is the server's: the views show its answers.
import {
  html,
  render,
  useCallback,
  useEffect,
  useRef,
  useState,
} from './vendor/preact-htm.module.js';

export { html, render, useCallback, useEffect, useRef, useState };

const Parse = window.Parse;
export { Parse };

const root = document.getElementById('root');
export const config = {
  appId: root.dataset.appId,
  mount: root.dataset.mount,
  liveQuery: root.dataset.liveQuery,
  idleMinutes: Number(root.dataset.idleMinutes) || 15,
  clinic: root.dataset.clinic,
  emergency: root.dataset.emergency,
  ssoUrl: root.dataset.ssoUrl || null,
  ssoClient: root.dataset.ssoClient || null,
  jsKey: root.dataset.jsKey || undefined,
};

// The SDK keeps the current user and its session token through this controller: the tab's
// sessionStorage, gone when the tab closes, and never localStorage (shared, persistent).
Parse.CoreManager.setStorageController({
  async: 0,
  getItem: (key) => sessionStorage.getItem(key),
  setItem: (key, value) => sessionStorage.setItem(key, value),
  removeItem: (key) => sessionStorage.removeItem(key),
  getAllKeys: () => Object.keys(sessionStorage),
  clear: () => sessionStorage.clear(),
});
Parse.initialize(config.appId, config.jsKey);
Parse.serverURL = location.origin + config.mount;
Parse.liveQueryServerURL = location.origin.replace(/^http/, 'ws') + config.liveQuery;

export const pointer = (className, objectId) => ({ __type: 'Pointer', className, objectId });

/** Sign out here and at the server, close live queries, forget everything, start afresh. */
export async function logOut(reason) {
  try {
    Parse.LiveQuery.close();
  } catch (_) {
    /* not open */
  }
  try {
    await Parse.User.logOut();
  } catch (_) {
    /* the session may already be gone at the server */
  }
  sessionStorage.clear();
  if (reason) sessionStorage.setItem('mh-notice', reason);
  location.replace(location.pathname);
}

/** A notice left by the last logout (no PHI: a fixed sentence), shown once. */
export function takeNotice() {
  const notice = sessionStorage.getItem('mh-notice');
  sessionStorage.removeItem('mh-notice');
  return notice;
}

/** The server's words for a failed call; an ended session signs the view out. */
export function problem(error) {
  if (error && error.code === Parse.Error.INVALID_SESSION_TOKEN) {
    logOut('Your session ended. Please sign in again.');
  }
  return (error && error.message) || String(error);
}

/** [busy, error, run]: run(fn) shows the server's error beside the form that caused it. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = useCallback(async (fn) => {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (e) {
      setError(problem(e));
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return [busy, error, run];
}

export const ErrorText = ({ error }) =>
  error ? html`<p class="error" role="alert">${error}</p>` : null;

/** Re-run `load` whenever a LiveQuery event arrives for any of `queries` (built by `make`). */
export function useLive(make, load, deps) {
  useEffect(() => {
    let subs = [];
    let alive = true;
    (async () => {
      for (const query of make()) {
        try {
          const sub = await query.subscribe();
          if (!alive) {
            sub.unsubscribe();
            continue;
          }
          for (const op of ['create', 'update', 'enter', 'leave', 'delete']) sub.on(op, () => load());
          subs.push(sub);
        } catch (_) {
          /* live updates are a convenience: the view still loads on demand */
        }
      }
    })();
    return () => {
      alive = false;
      subs.forEach((s) => s.unsubscribe());
      subs = [];
    };
  }, deps);
}

/** HIPAA automatic log-off: warn a minute before the idle limit, then sign out. */
export function IdleGuard() {
  const limit = config.idleMinutes * 60_000;
  const warnAt = Math.max(limit - 60_000, limit / 2);
  const last = useRef(Date.now());
  const [left, setLeft] = useState(null);
  useEffect(() => {
    const touch = () => {
      if (left === null) last.current = Date.now();
    };
    const events = ['keydown', 'pointerdown', 'scroll'];
    events.forEach((e) => addEventListener(e, touch, { passive: true }));
    const timer = setInterval(() => {
      const idle = Date.now() - last.current;
      if (idle >= limit) logOut('You were signed out after a period of inactivity.');
      else if (idle >= warnAt) setLeft(Math.ceil((limit - idle) / 1000));
    }, 1000);
    return () => {
      clearInterval(timer);
      events.forEach((e) => removeEventListener(e, touch));
    };
  }, [left === null]);
  if (left === null) return null;
  const stay = async () => {
    last.current = Date.now();
    setLeft(null);
    try {
      await Parse.Session.current(); // any call renews the server's idle clock
    } catch (e) {
      problem(e);
    }
  };
  return html`<div class="idle" role="alertdialog" aria-labelledby="idle-title" aria-describedby="idle-text">
    <h2 id="idle-title">Are you still there?</h2>
    <p id="idle-text">For your privacy you will be signed out in ${left} seconds.</p>
    <button onClick=${stay} autofocus>Stay signed in</button>
    <button class="secondary" onClick=${() => logOut()}>Sign out now</button>
  </div>`;
}

export const when = (value) => {
  const iso = value instanceof Date ? value : value && value.iso ? new Date(value.iso) : new Date(value);
  return Number.isNaN(iso.getTime()) ? '' : iso.toLocaleString();
};

/** A tab bar whose buttons switch sections (state in memory: nothing in the URL). */
export function Tabs({ tabs, current, onSelect, label }) {
  return html`<nav aria-label=${label}><ul class="tabs">
    ${tabs.map(
      ([id, text]) => html`<li><button class=${id === current ? 'tab current' : 'tab'}
        aria-current=${id === current ? 'page' : undefined} onClick=${() => onSelect(id)}>${text}</button></li>`
    )}
  </ul></nav>`;
}

/** Sign-in form; `extra` is the second factor when the server asks for it. */
export function SignIn({ onSignedIn, staff = false }) {
  const [busy, error, run] = useAction();
  const [needCode, setNeedCode] = useState(false);
  const submit = (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    run(async () => {
      const name = form.get('username');
      const password = form.get('password');
      let user;
      try {
        user = needCode
          ? await Parse.User.logInWithAdditionalAuth(name, password, { mfa: { token: form.get('code') } })
          : await Parse.User.logIn(name, password);
      } catch (err) {
        if (/additional authData mfa/i.test(err.message || '')) {
          setNeedCode(true);
          throw new Error('Enter the 6-digit code from your authenticator app.');
        }
        throw err;
      }
      onSignedIn(user);
    });
  };
  return html`<form class="card narrow" onSubmit=${submit} aria-labelledby="signin-title">
    <h2 id="signin-title">Sign in</h2>
    <label>Username<input name="username" autocomplete="username" required /></label>
    <label>Password<input name="password" type="password" autocomplete="current-password" required /></label>
    ${needCode &&
    html`<label>Authentication code<input name="code" inputmode="numeric" autocomplete="one-time-code" required /></label>`}
    <${ErrorText} error=${error} />
    <button disabled=${busy}>Sign in</button>
    ${config.ssoUrl && !staff &&
    html`<p><button type="button" class="secondary" onClick=${startSso}>Sign in with your organisation</button></p>`}
  </form>`;
}

const random = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');

/** Single sign-on (OIDC, id_token in the redirect's fragment): off to the identity provider,
 * with a state and a nonce kept in this tab only. */
export function startSso() {
  const state = random();
  const nonce = random();
  sessionStorage.setItem('mh-sso', JSON.stringify({ state, nonce }));
  const url = new URL(config.ssoUrl);
  url.search = new URLSearchParams({
    response_type: 'id_token',
    response_mode: 'fragment',
    client_id: config.ssoClient,
    redirect_uri: location.origin + location.pathname,
    scope: 'openid email',
    state,
    nonce,
  }).toString();
  location.assign(url.toString());
}

/** Back from the identity provider: the token leaves the address bar at once, the state must be
 * ours, and the server checks the token (signature, issuer, audience, expiry, nonce). */
export async function finishSso() {
  if (!location.hash.includes('id_token=')) return null;
  const params = new URLSearchParams(location.hash.slice(1));
  history.replaceState(null, '', location.pathname);
  const saved = JSON.parse(sessionStorage.getItem('mh-sso') || '{}');
  sessionStorage.removeItem('mh-sso');
  if (!saved.state || params.get('state') !== saved.state) {
    throw new Error('Single sign-on did not complete. Please try again.');
  }
  return Parse.User.logInWith('oidc', { authData: { id_token: params.get('id_token'), nonce: saved.nonce } });
}

/** A small line chart of scores over time (SVG, no library), with a text alternative. */
export function ScoreChart({ points, max, label }) {
  if (points.length === 0) return html`<p>No scores yet.</p>`;
  const w = 320;
  const h = 120;
  const x = (i) => (points.length === 1 ? w / 2 : 20 + (i * (w - 40)) / (points.length - 1));
  const y = (v) => h - 15 - (v / max) * (h - 30);
  const path = points.map((p, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(p.score).toFixed(1)}`).join(' ');
  const summary = points.map((p) => `${p.label}: ${p.score}`).join('; ');
  return html`<figure class="chart">
    <svg viewBox="0 0 ${w} ${h}" role="img" aria-label=${`${label}: ${summary}`}>
      <line x1="20" y1=${h - 15} x2=${w - 20} y2=${h - 15} class="axis" />
      <path d=${path} class="line" />
      ${points.map((p, i) => html`<circle cx=${x(i)} cy=${y(p.score)} r="4" class="dot" />`)}
    </svg>
    <figcaption>${label}</figcaption>
  </figure>`;
}
