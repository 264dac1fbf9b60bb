// Signing in and out: the header's login form (a dev token from `POST /v1/dev/token`),
// "Signed in as …" with Log out, the end of a session (401 or the token's expiry), and the
// "Log in first" prompts views show. The token itself is kept by api.js; this is the
// part the user sees.

import { api, currentSession, setSession, onUnauthorized } from '../api.js';
import { h, fill } from '../util.js';
import { toast, errorText } from './ui.js';

const accountEl = document.getElementById('account');

/** The header's account area: the login form, or who is signed in. */
export function renderAccount() {
  const session = currentSession();
  if (session) {
    fill(
      accountEl,
      h(
        'span',
        { class: 'who' },
        'Signed in as ',
        h('strong', { 'data-testid': 'current-user' }, session.user_id),
      ),
      h(
        'button',
        { type: 'button', class: 'link-button', 'data-testid': 'logout-button', on: { click: logout } },
        'Log out',
      ),
    );
    return;
  }
  const input = h('input', {
    id: 'login-name',
    name: 'user_id',
    'data-testid': 'login-name',
    autocomplete: 'username',
    required: true,
    maxlength: '128',
    placeholder: 'Your name',
    spellcheck: 'false',
    autocapitalize: 'none',
  });
  const error = h('p', { class: 'form-error', 'data-testid': 'login-error', hidden: true });
  const button = h('button', { type: 'submit', class: 'primary', 'data-testid': 'login-button' }, 'Log in');
  // Organisers and door staff get a token with role admin (the organiser pages need it).
  const organiser = h('input', { type: 'checkbox', id: 'login-organiser', 'data-testid': 'login-organiser' });
  const form = h(
    'form',
    { class: 'login', 'data-testid': 'login-form', on: { submit: (e) => login(e, input, button, error, organiser.checked) } },
    h('label', { for: 'login-name', class: 'sr-only' }, 'Your name'),
    input,
    h('label', { for: 'login-organiser', class: 'login-organiser' }, organiser, ' Organiser'),
    button,
    error,
  );
  fill(accountEl, form);
}

async function login(event, input, button, error, organiser = false) {
  event.preventDefault();
  const name = input.value.trim();
  error.hidden = true;
  if (!name || /\s/.test(name)) {
    error.textContent = 'Use a name without spaces, for example alice.';
    error.hidden = false;
    input.focus();
    return;
  }
  button.disabled = true;
  try {
    const r = await api('POST', '/v1/dev/token', {
      body: { user_id: name, role: organiser ? 'admin' : 'user' },
      auth: false,
    });
    setSession({
      token: r.data.token,
      user_id: r.data.user_id,
      role: r.data.role,
      expires_at: r.data.expires_at,
    });
    toast(`Welcome, ${r.data.user_id}.`, { kind: 'success', timeout: 4000 });
  } catch (err) {
    error.textContent =
      err.status === 404 ? 'Signing in is not available on this server.' : errorText(err);
    error.hidden = false;
    button.disabled = false;
  }
}

function logout() {
  setSession(null);
  toast('You are signed out.', { timeout: 4000 });
}

/** Send the user to the login field (e.g. "Log in to hold seats"). */
export function promptLogin(message = 'Log in first: type a name and press Log in.') {
  toast(message, { kind: 'warn' });
  const input = document.getElementById('login-name');
  if (input) {
    input.scrollIntoView({ block: 'center' });
    input.focus();
  }
}

/** What a page for signed-in users shows to everyone else. */
export function needLogin(what) {
  return h(
    'div',
    { class: 'empty' },
    h('p', {}, `Log in to see ${what}.`),
    h('button', { type: 'button', class: 'primary', on: { click: () => promptLogin('Type a name and press Log in.') } }, 'Log in'),
  );
}

// A request refused with 401 ends the session (api.js tells us).
onUnauthorized(() => {
  if (!currentSession()) return;
  setSession(null);
  toast('Your session has ended. Log in again to continue.', { kind: 'warn', urgent: true });
});

let expiryTimer;
/** Sign out when the token runs out (called on every session change). */
export function watchTokenExpiry(session) {
  clearTimeout(expiryTimer);
  if (session && session.expires_at) {
    const ms = session.expires_at * 1000 - Date.now();
    // setTimeout is limited to ~24.8 days; tokens live a day.
    if (ms < 2 ** 31 - 1) {
      expiryTimer = setTimeout(() => {
        setSession(null);
        toast('Your session has ended. Log in again to continue.', { kind: 'warn', urgent: true });
      }, Math.max(0, ms));
    }
  }
}
