// Generic drawing: which training-history keys are drawn together, and the page shell (escaped
// title and facts, embedded data that cannot close its script element).
import { describe, expect, it } from 'vitest';
import { htmlPage, trainingPanels } from '../../src/utils/visualization.js';

describe('training curves', () => {
  it('groups history keys into the known panels, validation next to training, counters left out', () => {
    const panels = trainingPanels([
      {
        step: 1,
        wallMs: 5,
        loss: 1,
        valLoss: 1.1,
        accuracy: 0.5,
        epsilon: 1,
        approxKl: 0.01,
        entropy: 1,
        valueLoss: 2,
        custom: 3,
      },
      // The sequence-model trainer's epoch line.
      {
        step: 10,
        epoch: 0,
        trainLoss: 1,
        valAccuracy: 0.4,
        learningRate: 0.001,
        gradNorm: 0.5,
        seconds: 3,
      },
    ]);
    expect(panels).toEqual([
      { title: 'Loss', keys: ['loss', 'trainLoss', 'valLoss'] },
      { title: 'Accuracy', keys: ['accuracy', 'valAccuracy'] },
      { title: 'Epsilon', keys: ['epsilon'] },
      { title: 'Entropy', keys: ['entropy'] },
      { title: 'KL', keys: ['approxKl'] },
      { title: 'Value loss', keys: ['valueLoss'] },
      { title: 'Learning rate', keys: ['learningRate'] },
      { title: 'Gradient norm', keys: ['gradNorm'] },
      { title: 'custom', keys: ['custom'] },
    ]);
  });
});

describe('html page shell', () => {
  it('escapes the title and facts and embeds data that cannot end its script element', () => {
    const html = htmlPage({
      title: 'a <b> & "c"',
      facts: { policy: '<x>', fee: 0.001 },
      sections: ['<h2>one</h2>', '<h2>two</h2>'],
      data: { text: '</script><script>alert(1)</script>' },
      script: 'window.ok=true;',
      chartLibrary: false,
    });
    expect(html).toContain('<title>a &lt;b&gt; &amp; &quot;c&quot;</title>');
    expect(html).toContain('<span>policy: <b>&lt;x&gt;</b></span><span>fee: <b>0.001</b></span>');
    expect(html).toContain('<main><h2>one</h2>\n<h2>two</h2></main>');
    expect(html).not.toContain('</script><script>alert(1)');
    expect(html).toContain('\\u003c/script>');
    expect(html).not.toContain('LightweightCharts');
    expect(html.endsWith('<script>window.ok=true;</script></body></html>\n')).toBe(true);
  });
});
