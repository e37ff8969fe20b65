import { describe, expect, it } from 'vitest';
import { logger } from '#lib/logger';
import { forbidInLogs, takeLeaks } from '#test/helpers/log-sink';

describe('log sink (INV-6)', () => {
  it('catches a session_key, a configured secret and a JWT in a log line', () => {
    // Act
    logger.info('oops', { session_key: 'abc' });
    logger.info('oops', { value: process.env.WECHAT_MCH_KEY });
    logger.info('oops', {
      token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MTIzNDU2Nzg5In0.c2lnbmF0dXJlc2lnbmF0dXJl',
    });
    // Assess
    expect(takeLeaks()).toHaveLength(3);
  });

  it('catches a web OAuth code, a web access_token and the official account secret', () => {
    // Act
    logger.warn('callback failed', { query: `code=oc${'0a'.repeat(16)}&state=b1764460000` });
    logger.info('oops', { accessToken: `wt${'5f'.repeat(24)}` });
    logger.info('oops', { value: process.env.WECHAT_MP_SECRET });
    // Assess
    expect(takeLeaks()).toHaveLength(3);
  });

  it('catches a phone number, an access_token in a URL and a ticket in a JSON field', () => {
    // Act
    logger.info('oops', { phone: '13812345678' });
    logger.info('oops', {
      url: 'https://api.weixin.qq.com/cgi-bin/ticket/getticket?access_token=ACCESS_TOKEN_abcdef123',
    });
    logger.info('oops', { ticket: 'bxLdikRXVbTPdHSM05e5u5sUoXNKd8' });
    // Assess
    expect(takeLeaks()).toHaveLength(3);
  });

  it('catches a value forbidden after the line that carried it was written', () => {
    // Arrange
    logger.info('called WeChat', { detail: 'opaque-token-value-123' });

    // Act
    forbidInLogs('opaque-token-value-123');

    // Assess
    expect(takeLeaks()).toHaveLength(1);
  });

  it('lets ordinary log lines through', () => {
    // Act
    logger.info('payment credited', { outTradeNo: 'M20261121080000abcdefABCDEF' });
    logger.info('timestamps', { at: 1732960000123, seconds: 1732960000, fee: 13800000000.5, rev: 1 });
    // Assess
    expect(takeLeaks()).toEqual([]);
  });
});
