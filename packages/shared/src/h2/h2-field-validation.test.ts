import { describe, expect, it } from 'vitest';
import { requestProblem, responseProblem, trailersProblem } from './h2-field-validation.js';
import type { HeaderList } from './hpack.js';

const CONNECT: HeaderList = [
  [':method', 'CONNECT'],
  [':authority', '10.0.0.1:80'],
];
const GET: HeaderList = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':path', '/'],
  [':authority', 'example'],
];

describe('requestProblem (RFC 9113 §8.2–§8.5)', () => {
  it('accepts a plain CONNECT, a GET, and the fields HBONE sends', () => {
    expect(requestProblem(CONNECT)).toBeUndefined();
    expect(requestProblem(GET)).toBeUndefined();
    expect(
      requestProblem([
        ...CONNECT,
        ['forwarded', 'for="10.0.0.2:4000"'],
        ['baggage', 'k8s.namespace.name=default'],
        ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
        ['te', 'trailers'],
        ['x-empty', ''],
      ]),
    ).toBeUndefined();
    expect(requestProblem([...GET, ['host', 'EXAMPLE']])).toBeUndefined();
  });

  const cases: Array<[string, HeaderList, RegExp]> = [
    ['an upper-case name', [...CONNECT, ['X-Upper', '1']], /upper-case/],
    ['a name with a space', [...CONNECT, ['x bad', '1']], /characters a field name may not carry/],
    ['a name with a colon inside', [...CONNECT, ['x:y', '1']], /characters a field name may not carry/],
    ['an empty name', [...CONNECT, ['', '1']], /empty field name/],
    [
      'a pseudo-header after a regular field',
      [
        [':method', 'CONNECT'],
        ['x-a', '1'],
        [':authority', 'a:1'],
      ],
      /after a regular field/,
    ],
    ['an unknown pseudo-header', [...CONNECT, [':foo', '1']], /unknown pseudo-header :foo/],
    [
      'an extended-CONNECT :protocol never enabled',
      [...CONNECT, [':protocol', 'websocket']],
      /unknown pseudo-header :protocol/,
    ],
    ['a response pseudo-header', [...CONNECT, [':status', '200']], /response pseudo-header :status/],
    ['a repeated pseudo-header', [...CONNECT, [':authority', '10.0.0.2:80']], /repeated/],
    ['connection', [...CONNECT, ['connection', 'close']], /connection-specific field connection/],
    ['keep-alive', [...CONNECT, ['keep-alive', 'timeout=5']], /connection-specific field keep-alive/],
    ['proxy-connection', [...CONNECT, ['proxy-connection', 'keep-alive']], /connection-specific/],
    ['transfer-encoding', [...CONNECT, ['transfer-encoding', 'chunked']], /connection-specific/],
    ['upgrade', [...CONNECT, ['upgrade', 'h2c']], /connection-specific field upgrade/],
    ['te other than trailers', [...CONNECT, ['te', 'gzip']], /te other than/],
    ['te: trailers in another case', [...CONNECT, ['te', 'Trailers']], /te other than/],
    ['a CR in a value', [...CONNECT, ['x-a', 'a\rb']], /NUL, CR or LF/],
    ['an LF in a value', [...CONNECT, ['x-a', 'a\nb']], /NUL, CR or LF/],
    ['a NUL in a value', [...CONNECT, ['x-a', 'a\0b']], /NUL, CR or LF/],
    ['a leading space in a value', [...CONNECT, ['x-a', ' a']], /whitespace/],
    ['a trailing tab in a value', [...CONNECT, ['x-a', 'a\t']], /whitespace/],
    [
      'a CR in :authority',
      [
        [':method', 'CONNECT'],
        [':authority', '10.0.0.1:80\r'],
      ],
      /:authority has a NUL, CR or LF/,
    ],
    ['no :method', [[':authority', 'a:1']], /missing :method/],
    ['CONNECT with :scheme', [...CONNECT, [':scheme', 'https']], /CONNECT with :scheme/],
    ['CONNECT with :path', [...CONNECT, [':path', '/']], /CONNECT with :path/],
    ['CONNECT without :authority', [[':method', 'CONNECT']], /CONNECT without :authority/],
    [
      'GET without :scheme',
      [
        [':method', 'GET'],
        [':path', '/'],
      ],
      /missing :scheme/,
    ],
    [
      'GET without :path',
      [
        [':method', 'GET'],
        [':scheme', 'https'],
      ],
      /missing or empty :path/,
    ],
    [
      'GET with an empty :path',
      [
        [':method', 'GET'],
        [':scheme', 'https'],
        [':path', ''],
      ],
      /missing or empty :path/,
    ],
    ['host differing from :authority', [...GET, ['host', 'other']], /host differs/],
  ];
  for (const [what, list, problem] of cases) {
    it(`refuses ${what}`, () => {
      expect(requestProblem(list)).toMatch(problem);
    });
  }
});

describe('responseProblem (RFC 9113 §8.3.2)', () => {
  it('accepts a status with fields', () => {
    expect(
      responseProblem([
        [':status', '200'],
        ['x-a', '1'],
      ]),
    ).toBeUndefined();
    expect(responseProblem([[':status', '103']])).toBeUndefined();
  });
  const cases: Array<[string, HeaderList, RegExp]> = [
    ['no :status', [['x-a', '1']], /missing :status/],
    [
      'a repeated :status',
      [
        [':status', '200'],
        [':status', '200'],
      ],
      /repeated/,
    ],
    [
      'a request pseudo-header',
      [
        [':status', '200'],
        [':path', '/'],
      ],
      /request pseudo-header :path/,
    ],
    [
      'an unknown pseudo-header',
      [
        [':status', '200'],
        [':x', '1'],
      ],
      /unknown pseudo-header/,
    ],
    [
      ':status after a field',
      [
        ['x-a', '1'],
        [':status', '200'],
      ],
      /after a regular field/,
    ],
    ['a non-numeric :status', [[':status', '2OO']], /three-digit/],
    ['a four-digit :status', [[':status', '2000']], /three-digit/],
    ['101', [[':status', '101']], /101/],
    [
      'an upper-case name',
      [
        [':status', '200'],
        ['Server', 'x'],
      ],
      /upper-case/,
    ],
    [
      'connection-specific fields',
      [
        [':status', '200'],
        ['transfer-encoding', 'chunked'],
      ],
      /connection-specific/,
    ],
    [
      'te',
      [
        [':status', '200'],
        ['te', 'trailers'],
      ],
      /te in a response/,
    ],
    [
      'an LF in a value',
      [
        [':status', '200'],
        ['x-a', 'a\nb'],
      ],
      /NUL, CR or LF/,
    ],
  ];
  for (const [what, list, problem] of cases) {
    it(`refuses ${what}`, () => {
      expect(responseProblem(list)).toMatch(problem);
    });
  }
});

describe('trailersProblem (RFC 9113 §8.1)', () => {
  it('accepts regular fields', () => {
    expect(trailersProblem([['grpc-status', '0']])).toBeUndefined();
  });
  it('refuses any pseudo-header, and bad fields', () => {
    expect(trailersProblem([[':status', '200']])).toMatch(/pseudo-header :status in trailers/);
    expect(trailersProblem([[':path', '/']])).toMatch(/pseudo-header :path in trailers/);
    expect(trailersProblem([['X-A', '1']])).toMatch(/upper-case/);
    expect(trailersProblem([['connection', 'close']])).toMatch(/connection-specific/);
    expect(trailersProblem([['x-a', ' 1']])).toMatch(/whitespace/);
  });
});
