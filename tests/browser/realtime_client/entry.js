// What a browser app imports: the official client's subscribe(), bundled for the page.
import { subscribe } from "inngest/realtime";

window.inngestSubscribe = subscribe;
