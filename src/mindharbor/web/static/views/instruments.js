// The published wording and answer scales of the three screening instruments. The server scores
// the answers (never this file): the form only collects them in the shape the server checks.

const OFTEN = [
  [0, 'Not at all'],
  [1, 'Several days'],
  [2, 'More than half the days'],
  [3, 'Nearly every day'],
];

export const INSTRUMENTS = {
  'PHQ-9': {
    title: 'PHQ-9: Patient Health Questionnaire',
    stem: 'Over the last 2 weeks, how often have you been bothered by any of the following problems?',
    scale: OFTEN,
    items: [
      'Little interest or pleasure in doing things',
      'Feeling down, depressed, or hopeless',
      'Trouble falling or staying asleep, or sleeping too much',
      'Feeling tired or having little energy',
      'Poor appetite or overeating',
      'Feeling bad about yourself — or that you are a failure or have let yourself or your family down',
      'Trouble concentrating on things, such as reading the newspaper or watching television',
      'Moving or speaking so slowly that other people could have noticed? Or the opposite — being so fidgety or restless that you have been moving around a lot more than usual',
      'Thoughts that you would be better off dead or of hurting yourself in some way',
    ].map((text, i) => ({ id: `item${i + 1}`, text })),
  },
  'GAD-7': {
    title: 'GAD-7: Generalized Anxiety Disorder scale',
    stem: 'Over the last 2 weeks, how often have you been bothered by the following problems?',
    scale: OFTEN,
    items: [
      'Feeling nervous, anxious, or on edge',
      'Not being able to stop or control worrying',
      'Worrying too much about different things',
      'Trouble relaxing',
      'Being so restless that it is hard to sit still',
      'Becoming easily annoyed or irritable',
      'Feeling afraid, as if something awful might happen',
    ].map((text, i) => ({ id: `item${i + 1}`, text })),
  },
  'C-SSRS': {
    title: 'C-SSRS: Columbia Suicide Severity Rating Scale (screener)',
    stem: 'Answer these questions about the past month, unless a question says otherwise.',
    scale: [
      [true, 'Yes'],
      [false, 'No'],
    ],
    items: [
      { id: 'q1', text: 'Have you wished you were dead or wished you could go to sleep and not wake up?' },
      { id: 'q2', text: 'Have you actually had any thoughts of killing yourself?' },
      { id: 'q3', text: 'Have you been thinking about how you might do this?', when: (a) => a.q2 === true },
      {
        id: 'q4',
        text: 'Have you had these thoughts and had some intention of acting on them?',
        when: (a) => a.q2 === true,
      },
      {
        id: 'q5',
        text: 'Have you started to work out or worked out the details of how to kill yourself? Do you intend to carry out this plan?',
        when: (a) => a.q2 === true,
      },
      {
        id: 'q6',
        text: 'Have you ever done anything, started to do anything, or prepared to do anything to end your life?',
      },
      { id: 'q6_recent', text: 'Was this within the past 3 months?', when: (a) => a.q6 === true },
    ],
  },
};

// Plain-language meaning of the server's severity band.
export const MEANING = {
  minimal: 'Your answers suggest few or no symptoms right now.',
  mild: 'Your answers suggest mild symptoms. Your care team will review them with you.',
  moderate: 'Your answers suggest moderate symptoms. Your care team will follow up with you.',
  'moderately severe':
    'Your answers suggest fairly strong symptoms. Your care team will follow up with you soon.',
  severe: 'Your answers suggest severe symptoms. Your care team will contact you soon.',
  none: 'Your answers did not show signs of suicide risk.',
  low: 'Your answers show some thoughts your care team will talk with you about.',
  high: 'Your answers show a risk your care team needs to act on. Please use the help below now.',
};

/** The answers a form may send: questions skipped by the screener's logic are left out. */
export function askedItems(name, answers) {
  return INSTRUMENTS[name].items.filter((item) => !item.when || item.when(answers));
}
