// Secure messaging, shared by both views: threads from `listConversations` (unread counts),
// a thread's messages with attachments (signed, expiring download links), read receipts sent
// as the recipient, and live arrival through LiveQuery.
import { ErrorText, Parse, html, pointer, problem, useAction, useEffect, useLive, useState, when } from './common.js';

const byId = (p) => (p && (p.id || p.objectId)) || null;

/** Messages of one patient's conversations. `to` starts a new thread with that user. */
export function Conversations({ me, patient, to = null, names = {} }) {
  const [threads, setThreads] = useState([]);
  const [current, setCurrent] = useState(null);
  const [messages, setMessages] = useState([]);
  const [error, setError] = useState(null);

  const loadThreads = async () => {
    try {
      const all = await Parse.Cloud.run('listConversations', { limit: 100 });
      setThreads(all.filter((t) => byId(t.patient) === patient.id));
    } catch (e) {
      setError(problem(e));
    }
  };
  const loadMessages = async (conversationId) => {
    if (!conversationId) return;
    try {
      const found = await new Parse.Query('Message')
        .equalTo('conversationId', conversationId)
        .equalTo('patient', pointer('PatientProfile', patient.id))
        .ascending('createdAt')
        .limit(500)
        .find();
      setMessages(found);
      // Read receipts are the recipient's statement: only messages addressed to me.
      const unread = found.filter((m) => byId(m.get('to')) === me.id && !m.get('isRead'));
      if (unread.length) {
        await Parse.Object.saveAll(unread.map((m) => m.set('isRead', true)));
        loadThreads();
      }
    } catch (e) {
      setError(problem(e));
    }
  };
  useEffect(() => {
    loadThreads();
  }, [patient.id]);
  useEffect(() => {
    loadMessages(current);
  }, [current]);
  useLive(
    () => [new Parse.Query('Message').equalTo('patient', pointer('PatientProfile', patient.id))],
    () => {
      loadThreads();
      loadMessages(current);
    },
    [patient.id, current]
  );

  const other = (() => {
    for (const m of [...messages].reverse()) {
      if (byId(m.get('from')) !== me.id) return byId(m.get('from'));
      if (byId(m.get('to')) !== me.id) return byId(m.get('to'));
    }
    return to;
  })();
  return html`<section class="card messages" aria-labelledby="msg-title">
    <h2 id="msg-title">Messages</h2>
    <${ErrorText} error=${error} />
    <div class="split">
      <nav aria-label="Conversations"><ul class="threads">
        ${threads.length === 0 && html`<li>No conversations yet.</li>`}
        ${threads.map(
          (t) => html`<li><button class=${t.conversationId === current ? 'thread current' : 'thread'}
            aria-current=${t.conversationId === current ? 'true' : undefined}
            onClick=${() => setCurrent(t.conversationId)}>
            <span>${t.lastMessage.body.slice(0, 40)}</span>
            ${t.unreadCount > 0 && html`<span class="badge">${t.unreadCount} unread</span>`}
          </button></li>`
        )}
        ${to && html`<li><button class="secondary" onClick=${() => {
          setCurrent(`c-${Date.now().toString(36)}`);
          setMessages([]);
        }}>New conversation</button></li>`}
      </ul></nav>
      <div class="thread-view">
        ${current
          ? html`<ol class="bubbles" aria-live="polite" aria-label="Conversation">
              ${messages.map((m) => html`<${Bubble} m=${m} mine=${byId(m.get('from')) === me.id} names=${names} />`)}
            </ol>
            ${other
              ? html`<${Compose} conversationId=${current} patient=${patient} to=${other}
                  onSent=${() => { loadMessages(current); loadThreads(); }} />`
              : html`<p>Replies go to your care team once they have written to you.</p>`}`
          : html`<p>Choose a conversation.</p>`}
      </div>
    </div>
  </section>`;
}

function Bubble({ m, mine, names }) {
  const files = m.get('attachments') || [];
  const receipt = mine ? ` · ${m.get('status') || 'sent'}` : '';
  return html`<li class=${mine ? 'bubble mine' : 'bubble'}>
    <p class="meta">${mine ? 'You' : names[byId(m.get('from'))] || 'Care team'} · ${when(m.get('sentAt') || m.createdAt)}${receipt}</p>
    <p>${m.get('body')}</p>
    ${files.map((f) => html`<p><${Attachment} file=${f} /></p>`)}
  </li>`;
}

/** A signed link works only with the session it was minted for (the server checks the
 * X-Parse-Session-Token header), so the file is fetched with it and saved from memory. */
function Attachment({ file }) {
  const [error, setError] = useState(null);
  const label = file.name().replace(/^[^_]*_/, '');
  const download = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const response = await fetch(file.url(), {
        headers: { 'X-Parse-Session-Token': Parse.User.current().getSessionToken() },
        credentials: 'omit',
      });
      if (!response.ok) throw new Error('The attachment could not be downloaded.');
      const link = document.createElement('a');
      link.href = URL.createObjectURL(await response.blob());
      link.download = label;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 1000);
    } catch (err) {
      setError(problem(err));
    }
  };
  return html`<a href="#" onClick=${download}>Download ${label}</a><${ErrorText} error=${error} />`;
}

function Compose({ conversationId, patient, to, onSent }) {
  const [busy, error, run] = useAction();
  const submit = (e) => {
    e.preventDefault();
    const formEl = e.target;
    const form = new FormData(formEl);
    run(async () => {
      const attachments = [];
      const upload = form.get('attachment');
      if (upload && upload.size) {
        // A neutral name: file names travel in URLs, and a name can carry PHI.
        const ext = (upload.name.match(/\.[A-Za-z0-9]{1,8}$/) || [''])[0].toLowerCase();
        attachments.push(await new Parse.File(`attachment${ext}`, upload, upload.type).save());
      }
      await new Parse.Object('Message').save({
        conversationId,
        patient: pointer('PatientProfile', patient.id),
        to: pointer('_User', to),
        body: form.get('body'),
        attachments,
        isRead: false,
      });
      formEl.reset();
      onSent();
    });
  };
  return html`<form class="compose" onSubmit=${submit}>
    <label>Message<textarea name="body" rows="3" required></textarea></label>
    <label>Attachment (optional)<input name="attachment" type="file" /></label>
    <${ErrorText} error=${error} />
    <button disabled=${busy}>Send</button>
  </form>`;
}
