// A page as a front-end project writes it: the package imported by name,
// init() awaited, then used. The test hands it corpus vectors to answer.
import init, * as m from "mangaassist";
import { checkerFailures, failures } from "../../node/suites.mjs";

await init();
window.__failures = (suite, vectors) => failures(m, suite, vectors);
window.__checkerFailures = (suite, vectors) => checkerFailures(m, suite, vectors);
window.__version = m.version();
window.__ready = true;
