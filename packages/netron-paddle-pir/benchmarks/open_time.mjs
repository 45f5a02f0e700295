// Time to open a model in headless Chromium until Netron has drawn the graph.
// Usage: node open_time.mjs SPEC.json -> JSON [{name, url, ms: [...], nodes, message}]
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as url from 'node:url';

const here = path.dirname(url.fileURLToPath(import.meta.url));
const e2e = await import(url.pathToFileURL(path.join(here, '..', 'tests', 'browser', 'e2e.mjs')).href);

const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf-8'));
const browser = await e2e.launch(spec.chromium || '/usr/bin/chromium');
const results = spec.cases.map((item) => ({ ...item, ms: [] }));
try {
    // Warm-up: one discarded open of each, so neither side pays for a cold browser.
    for (const result of spec.warmup === false ? [] : results) {
        const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
        await page.addInitScript(e2e.keepEval);
        result.warmup_ms = await e2e.openModel(page, result.url, spec.timeout || 600000);
        await page.close();
    }
    for (let round = 0; round < (spec.rounds || 3); round++) {
        for (const result of results) { // interleaved, so both readers see the same machine load
            const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
            await page.addInitScript(e2e.keepEval);
            result.ms.push(await e2e.openModel(page, result.url, spec.timeout || 600000));
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
