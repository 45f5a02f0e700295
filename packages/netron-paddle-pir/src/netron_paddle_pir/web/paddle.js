// Served by netron-paddle-pir in place of Netron's own paddle.js. PIR JSON programs go to the
// netron-paddle-pir reader; every other Paddle format goes to Netron's reader, which the
// launcher serves unchanged as paddle-upstream.js and which is loaded only when needed.

import * as pir from './paddle-pir.js';
// Listed here too, so that a browser loading these files as they are fetches the reader's
// modules and its signature table in one round, not two (the launcher serves them bundled into
// this file: netron_paddle_pir.bundle).
import './paddle-pir-program.js';
import './paddle-pir-ops.js';
import './paddle-pir-weights.js';
import './paddle-pir-modules.js';
import './pir-signatures.json' with { type: 'json' };

export const ModelFactory = class {

    constructor() {
        this._pir = new pir.ModelFactory();
        this._upstream = null;
    }

    async upstream() {
        if (!this._upstream) {
            const upstream = await import('./paddle-upstream.js');
            this._upstream = new upstream.ModelFactory();
        }
        return this._upstream;
    }

    async match(context) {
        const type = await this._pir.match(context);
        if (type) {
            return type;
        }
        const upstream = await this.upstream();
        return upstream.match(context);
    }

    filter(context, match) {
        if (context.type === 'paddle.pir') {
            return true;
        }
        return this._upstream && this._upstream.filter ? this._upstream.filter(context, match) : true;
    }

    async open(context) {
        if (context.type === 'paddle.pir') {
            return this._pir.open(context);
        }
        const upstream = await this.upstream();
        return upstream.open(context);
    }
};
