// Served by netron-paddle-pir in place of Netron's own paddle.js. PIR JSON programs go to the
// netron-paddle-pir reader; every other Paddle format goes to Netron's reader, which the
// launcher serves unchanged as paddle-upstream.js.

import * as upstream from './paddle-upstream.js';
import * as pir from './paddle-pir.js';

export const ModelFactory = class {

    constructor() {
        this._pir = new pir.ModelFactory();
        this._upstream = new upstream.ModelFactory();
    }

    async match(context) {
        const type = await this._pir.match(context);
        if (type) {
            return type;
        }
        return this._upstream.match(context);
    }

    filter(context, match) {
        if (context.type === 'paddle.pir') {
            return true;
        }
        return this._upstream.filter ? this._upstream.filter(context, match) : true;
    }

    async open(context) {
        if (context.type === 'paddle.pir') {
            return this._pir.open(context);
        }
        return this._upstream.open(context);
    }
};
