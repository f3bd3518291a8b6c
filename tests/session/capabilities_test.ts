// PROTOCOL.md §1–§2: greetings and what each greeting lists, before and after TLS.
import { fakeDeps, newSession, transcript } from "./harness.ts";

Deno.test("EHLO before TLS lists STARTTLS and no AUTH", async () => {
  await transcript(
    newSession(fakeDeps()),
    `
    S: 220 mx.example.test ESMTP stoken
    C: EHLO client.example
    S: 250-mx.example.test
    S: 250-PIPELINING
    S: 250-SIZE 10240
    S: 250-ENHANCEDSTATUSCODES
    S: 250-8BITMIME
    S: 250 STARTTLS
  `,
  );
});

Deno.test("EHLO after STARTTLS lists AUTH PLAIN LOGIN and no STARTTLS, never STOKEN", async () => {
  await transcript(
    newSession(fakeDeps()),
    `
    C: EHLO client.example
    S: 250-mx.example.test
    S: 250-PIPELINING
    S: 250-SIZE 10240
    S: 250-ENHANCEDSTATUSCODES
    S: 250-8BITMIME
    S: 250 STARTTLS
    C: STARTTLS
    S: 220 2.0.0 Ready to start TLS
    TLS
    C: ehlo client.example
    S: 250-mx.example.test
    S: 250-PIPELINING
    S: 250-SIZE 10240
    S: 250-ENHANCEDSTATUSCODES
    S: 250-8BITMIME
    S: 250 AUTH PLAIN LOGIN
  `,
  );
});

Deno.test("EHLO on the implicit-TLS listener is the after-TLS list", async () => {
  await transcript(
    newSession(fakeDeps(), "submissions"),
    `
    C: EHLO client.example
    S: 250-mx.example.test
    S: 250-PIPELINING
    S: 250-SIZE 10240
    S: 250-ENHANCEDSTATUSCODES
    S: 250-8BITMIME
    S: 250 AUTH PLAIN LOGIN
  `,
  );
});

Deno.test("LHLO before TLS on submission never lists STOKEN", async () => {
  await transcript(
    newSession(fakeDeps()),
    `
    C: LHLO remote.example
    S: 250-mx.example.test
    S: 250-PIPELINING
    S: 250-ENHANCEDSTATUSCODES
    S: 250 STARTTLS
  `,
  );
});

Deno.test("LHLO on the local LMTP listener: greeting and list", async () => {
  await transcript(
    newSession(fakeDeps(), "lmtp"),
    `
    S: 220 mx.example.test LMTP stoken
    C: LHLO mta.example
    S: 250-mx.example.test
    S: 250-PIPELINING
    S: 250-SIZE 10240
    S: 250-ENHANCEDSTATUSCODES
    S: 250 8BITMIME
  `,
  );
});

Deno.test("HELO answers with the host name and no extensions", async () => {
  await transcript(
    newSession(fakeDeps()),
    `
    C: HELO client.example
    S: 250 mx.example.test
  `,
  );
});

Deno.test("HELO and EHLO on the LMTP listener: 500 5.5.1 Use LHLO", async () => {
  await transcript(
    newSession(fakeDeps(), "lmtp"),
    `
    C: HELO mta.example
    S: 500 5.5.1 Use LHLO
    C: EHLO mta.example
    S: 500 5.5.1 Use LHLO
  `,
  );
});

Deno.test("verbs are case-insensitive", async () => {
  await transcript(
    newSession(fakeDeps()),
    `
    C: eHlO client.example
    S: 250-mx.example.test
    S: 250-PIPELINING
    S: 250-SIZE 10240
    S: 250-ENHANCEDSTATUSCODES
    S: 250-8BITMIME
    S: 250 STARTTLS
    C: nOoP
    S: 250 2.0.0 OK
  `,
  );
});
