/**
 * What the simulator page and the H5 page share (loaded before each as /simulator/kit.js): formatting, the toast,
 * the simulated WeChat user's ids (one per browser profile, in this origin's localStorage), and the member and
 * order cards.
 */
window.SimulatorKit = (() => {
  const $ = (id) => document.getElementById(id);
  const STATUS_TEXT = { PENDING: '待支付', PAID: '已支付', CLOSED: '已关闭', REFUNDED: '已退款' };

  /** Text made safe for innerHTML. */
  function html(text) {
    const div = document.createElement('div');
    div.textContent = String(text);
    return div.innerHTML;
  }

  const yuan = (fen) => `¥${(fen / 100).toFixed(2)}`;
  const time = (iso) => new Date(iso).toLocaleTimeString('zh-CN', { hour12: false });

  /** One id of the simulated WeChat user (`sim:openid`, `sim:unionid`, …), made on first use. */
  function person(name, prefix) {
    let id = localStorage.getItem(name);
    if (!id) {
      id = `${prefix}${Math.random().toString(36).slice(2, 12)}${Date.now().toString(36)}`;
      localStorage.setItem(name, id);
    }
    return id;
  }

  let toastTimer;
  function toast(message) {
    const el = $('toast');
    el.textContent = message;
    el.classList.add('show');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => el.classList.remove('show'), 1800);
  }

  /** Runs a click's work; its error becomes a toast. */
  async function run(task) {
    try {
      await task();
    } catch (error) {
      toast(error.message || '出错了');
    }
  }

  /** The profile card: nickname, avatar letter and the membership line (its element: `membershipId`). */
  function showMember(user, membershipId) {
    $('nickname').textContent = user.nickname;
    $('avatar').textContent = [...user.nickname][0] || '?';
    const member = user.role === 1 && user.membershipExpiredAt;
    const membership = $(membershipId);
    membership.textContent = member
      ? `会员 · 有效期至 ${user.membershipExpiredAt.slice(0, 10)}`
      : '普通用户 · 尚未开通会员';
    membership.classList.toggle('member', Boolean(member));
  }

  /** The current-order card (#order); its status carries data-testid `statusTestId`. */
  function showOrder(order, statusTestId) {
    $('order').innerHTML = `
      <div class="order-head">
        <strong>${html(order.description)}</strong>
        <span class="status ${order.status}" data-testid="${statusTestId}">${STATUS_TEXT[order.status] || ''} ${order.status}</span>
      </div>
      <div class="order-no">${html(order.outTradeNo)} · ${yuan(order.totalFee)}</div>`;
  }

  return { $, STATUS_TEXT, html, yuan, time, person, toast, run, showMember, showOrder };
})();
