import { WechatPayV2 } from '#lib/clients/wechat-pay-v2';
import { WechatPayV3 } from '#lib/clients/wechat-pay-v3';
import type { Config } from '#lib/config';
import { ConfigError } from '#lib/errors';
import type { PaymentProvider } from './payment-provider';

const providers = new WeakMap<Config, PaymentProvider>();

/** The WeChat Pay client for the configured version (WECHAT_PAY_VERSION), built once per loaded config; throws ConfigError on bad v3 keys. */
export function paymentProvider(config: Config): PaymentProvider {
  let provider = providers.get(config);
  if (!provider) {
    if (config.payVersion === 'v2') provider = new WechatPayV2(config);
    else if (config.payVersion === 'v3') provider = new WechatPayV3(config);
    else throw new ConfigError(`WECHAT_PAY_VERSION ${String(config.payVersion)} is not supported`);
    providers.set(config, provider);
  }
  return provider;
}
