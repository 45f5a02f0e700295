// Time to open a model in headless Chromium until Netron has drawn the graph.
// Usage: node open_time.mjs SPEC.json
//   -> JSON [{name, url, ms: [...], page_ms: [...], reader_ms: [...], start_ms: [...], nodes, message}]
// ms: from page.goto() until Playwright, polling every 50 ms, sees the drawn graph (or an error).
// page_ms: the page's own clock (performance.now(), from the start of navigation) at the first
// DOM change after which the same condition holds, seen by a MutationObserver: no polling step.
// start_ms: the page's clock when Netron requests the reader's `paddle.js` (resource timing
// startTime). Up to there both readers run the same Netron code, so that part is shared.
// reader_ms: page_ms - start_ms, the reader's part: from the request of `paddle.js` to the drawn
// graph (loading and evaluating the reader, open(), Netron's layout and drawing of its graph).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as url from 'node:url';

const here = path.dirname(url.fileURLToPath(import.meta.url));
const e2e = await import(url.pathToFileURL(path.join(here, '..', 'tests', 'browser', 'e2e.mjs')).href);

// Runs in the page before its scripts: notes the moment the graph is drawn (or an error shown).
const drawn = () => {
    const check = () => {
        const message = document.getElementById('message-text');
        const shown = message && message.textContent.length > 0 && !document.body.classList.contains('spinner');
        return shown || (document.body && document.body.classList.contains('default') && document.querySelector('#canvas g.graph-node'));
    };
    const observer = new MutationObserver(() => {
        if (window.__drawn === undefined && check()) {
            window.__drawn = performance.now();
            observer.disconnect();
        }
    });
    observer.observe(document, { childList: true, subtree: true, attributes: true, attributeFilter: ['class'], characterData: true });
};

const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf-8'));
const browser = await e2e.launch(spec.chromium || '/usr/bin/chromium');
const results = spec.cases.map((item) => ({ ...item, ms: [], page_ms: [], reader_ms: [], start_ms: [] }));
try {
    // Warm-up: one discarded open of each, so neither side pays for a cold browser.
    for (const result of spec.warmup === false ? [] : results) {
        const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
        await page.addInitScript(e2e.keepEval);
        result.warmup_ms = await e2e.openModel(page, result.url, spec.timeout || 600000);
        await page.close();
    }
    for (let round = 0; round < (spec.rounds || 3); round++) {
        // Interleaved, so both readers see the same machine load; every other round runs the
        // cases in reverse order, so neither reader always opens right after the other's page
        // was closed (a closed page's teardown can land on the next open).
        const order = round % 2 === 0 ? results : [...results].reverse();
        for (const result of order) {
            const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
            await page.addInitScript(e2e.keepEval);
            await page.addInitScript(drawn);
            result.ms.push(await e2e.openModel(page, result.url, spec.timeout || 600000));
            const clock = await page.evaluate(() => {
                const reader = performance.getEntriesByType('resource').find((entry) => new URL(entry.name).pathname === '/paddle.js');
                return { drawn: window.__drawn, start: reader ? reader.startTime : null };
            });
            result.page_ms.push(Math.round(clock.drawn));
            result.start_ms.push(clock.start === null ? null : Math.round(clock.start));
            result.reader_ms.push(clock.start === null ? null : Math.round(clock.drawn - clock.start));
            Object.assign(result, await page.evaluate(() => ({
                nodes: document.querySelectorAll('#canvas g.graph-node').length,
                message: (document.getElementById('message-text') || {}).textContent || ''
            })));
            await page.close();
        }
    }
} finally {
    await browser.close();
}
process.stdout.write(JSON.stringify(results));
