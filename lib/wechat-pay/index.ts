import { WechatPayV2 } from '../clients/wechat-pay-v2';
import type { Config } from '../config';
import { ConfigError } from '../errors';
import type { PaymentProvider } from './provider';

const providers = new WeakMap<Config, PaymentProvider>();

/** The WeChat Pay client for the configured version (WECHAT_PAY_VERSION), built once per loaded config. */
export function paymentProvider(config: Config): PaymentProvider {
  let provider = providers.get(config);
  if (!provider) {
    if (config.payVersion !== 'v2')
      throw new ConfigError(`WECHAT_PAY_VERSION ${config.payVersion} is not supported`);
    provider = new WechatPayV2(config);
    providers.set(config, provider);
  }
  return provider;
}
