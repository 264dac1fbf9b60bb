// The waitlist offer banner above every page: a seat someone waited for was released and is
// held for them now ("Pay now" / "Decline"). Separate from the hold list it reads because
// it is page furniture, redrawn on every route and every change of my holds.

import { h, fill, countdown } from '../util.js';
import { myHolds, pay, cancelHold } from './holds.js';

/** Offers the user declined in this tab, so the banner does not come back meanwhile. */
const declinedOffers = new Set();
const offersEl = document.getElementById('offers');

/** Draw the banner: one per active offer, except on its own hold page. */
export function renderOffers() {
  const onItsPage = (location.hash.match(/^#\/holds\/([^/?]+)$/) || [])[1];
  const offers = [...myHolds.values()].filter(
    (hold) =>
      hold.from_waitlist &&
      hold.status === 'active' &&
      hold.hold_id !== onItsPage &&
      !declinedOffers.has(hold.hold_id) &&
      Date.parse(hold.expires_at) > Date.now(),
  );
  fill(
    offersEl,
    offers.map((hold) =>
      h(
        'section',
        {
          class: 'offer-banner',
          'data-testid': 'offer-banner',
          'data-hold-id': hold.hold_id,
          'aria-labelledby': `offer-${hold.hold_id}`,
        },
        h(
          'div',
          { class: 'offer-text' },
          h('h2', { id: `offer-${hold.hold_id}` }, 'A seat you waited for is yours'),
          h(
            'p',
            {},
            h('strong', { 'data-testid': 'offer-seats' }, hold.seat_ids.join(', ') || `${hold.quantity} places`),
            ' is held for you. Pay within ',
            countdown(hold.expires_at, { 'data-testid': 'offer-countdown' }),
            ' or it goes to the next person.',
          ),
        ),
        h(
          'div',
          { class: 'actions' },
          h(
            'button',
            { type: 'button', class: 'primary', 'data-testid': 'offer-pay', on: { click: (e) => pay(hold, e.currentTarget) } },
            'Pay now',
          ),
          h(
            'button',
            {
              type: 'button',
              'data-testid': 'offer-decline',
              on: {
                click: async (e) => {
                  declinedOffers.add(hold.hold_id);
                  await cancelHold(hold, e.currentTarget);
                },
              },
            },
            'Decline',
          ),
          h('a', { href: `#/holds/${hold.hold_id}`, class: 'offer-link' }, 'Details'),
        ),
      ),
    ),
  );
}
