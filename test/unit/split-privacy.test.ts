import { describe, expect, it } from 'vitest';
import { RDP_ORDERS, gaussianRdp, headShareAccount, rdpToDp } from '../../src/learn/privacy.ts';

describe('RDP accountant for eq. (4) head shares', () => {
  it('the Gaussian mechanism composes to T·α·Δ²/(2σ²) (Mironov 2017, Prop. 7 and Prop. 1)', () => {
    // α = 4, Δ = 2, σ = 2, T = 3: 3 · 4 · 4 / (2 · 4) = 6
    expect(gaussianRdp(4, { sensitivity: 2, sigma: 2, releases: 3 })).toBeCloseTo(6, 12);
    expect(gaussianRdp(4, { sensitivity: 2, sigma: 2, releases: 0 })).toBe(0);
    expect(gaussianRdp(4, { sensitivity: 2, sigma: 0, releases: 1 })).toBe(Infinity);
  });

  it('the conversion at one order is rdp + ln((α−1)/α) − (ln δ + ln α)/(α−1)', () => {
    // α = 2, rdp = 1, δ = 1e-5: 1 + ln(1/2) − (ln 1e-5 + ln 2) = 1 − 2·ln 2 + 5·ln 10
    const { epsilon, order } = rdpToDp(() => 1, 1e-5, [2]);
    expect(order).toBe(2);
    expect(epsilon).toBeCloseTo(1 - 2 * Math.LN2 + 5 * Math.LN10, 12);
  });

  it('10 shares at z = 5 give ε = 6.208 at δ = 1e-5, by hand at the best order α = 4.5', () => {
    // Δ = 2C, σ = 5C: rdp(α) = 10 · α · 4 / 50 = 0.8·α. At α = 4.5:
    //   3.6 + ln(3.5/4.5) − (ln 1e-5 + ln 4.5)/3.5 = 3.6 − 0.251314 + 2.859671 = 6.208356
    const byHand = 0.8 * 4.5 + Math.log(3.5 / 4.5) - (Math.log(1e-5) + Math.log(4.5)) / 3.5;
    expect(byHand).toBeCloseTo(6.208356, 6);
    for (const clip of [0.5, 1, 7]) {
      const a = headShareAccount({ clip, noise: 5, releases: 10, delta: 1e-5 });
      expect(a.epsilon, `C = ${clip}`).toBeCloseTo(byHand, 9); // ε does not depend on C, only on z
      expect(a.order).toBe(4.5);
      expect(a.sensitivity).toBe(2 * clip);
      expect(a.sigma).toBe(5 * clip);
    }
    // Independent checks (Python, scipy): the continuous minimum over α is 6.20805 (α = 4.536),
    // so the order grid costs < 0.001; the exact ε of the composed Gaussian (Balle & Wang 2018,
    // μ = √10 · 2/5) is 5.759: RDP is an upper bound, and not a loose one here.
    const e = headShareAccount({ clip: 1, noise: 5, releases: 10, delta: 1e-5 }).epsilon;
    expect(e - 6.20805).toBeLessThan(0.001);
    expect(e).toBeGreaterThan(5.759);
  });

  it('ε grows with the shares and shrinks with the noise; no noise is no guarantee; no share is ε = 0', () => {
    const eps = (noise: number, releases: number) => headShareAccount({ clip: 1, noise, releases, delta: 1e-5 }).epsilon;
    expect(eps(5, 50)).toBeGreaterThan(eps(5, 10));
    expect(eps(10, 10)).toBeLessThan(eps(5, 10));
    expect(eps(0, 10)).toBe(Infinity);
    expect(eps(0.01, 1)).toBeGreaterThan(1e4); // eq. (4)'s small "disturbance" protects nothing
    expect(headShareAccount({ clip: 1, noise: 5, releases: 0, delta: 1e-5 })).toMatchObject({ epsilon: 0, order: null });
  });

  it('refuses a δ outside (0, 1) and orders at or below 1', () => {
    expect(() => rdpToDp(() => 1, 0)).toThrow(RangeError);
    expect(() => rdpToDp(() => 1, 1)).toThrow(RangeError);
    expect(() => rdpToDp(() => 1, 1e-5, [1])).toThrow(RangeError);
    expect(RDP_ORDERS.every((a) => a > 1)).toBe(true);
  });
});
